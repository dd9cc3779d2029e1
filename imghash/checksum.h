/* checksum.h -- crc32, md5 and sha1 of a file's bytes (ih_checksum_*).
 *
 * crc32 comes from zlib (which libpng loads anyway), md5 and sha1 from
 * OpenSSL's EVP interface.  Text forms are lower-case hex as an `_img` entry
 * writes them; the raw digests are for the caller: comparing with an md5 a
 * source gives, naming a stored copy of the file.
 */
#ifndef IH_CHECKSUM_H
#define IH_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct ih_checksums {
    uint32_t crc32;
    unsigned char md5[16];
    unsigned char sha1[20];
    char crc32_hex[9];
    char md5_hex[33];
    char sha1_hex[41];
} ih_checksums;

/* Fills OUT with the checksums of the LEN bytes at DATA (NULL when LEN is
 * 0).  Returns 0, or -1 when OpenSSL fails, which it does only without
 * memory (OUT is then undefined). */
int ih_checksum_compute(const unsigned char *data, size_t len, ih_checksums *out);

/* Standard base64 of LEN bytes (with padding) into OUT, which holds
 * 4*((len+2)/3)+1 bytes: the form of an md5 that a source gives as base64
 * of the raw digest, and of a hash's bytes (ih_hashenc_base64). */
void ih_checksum_base64(const unsigned char *data, size_t len, char *out);

#endif
