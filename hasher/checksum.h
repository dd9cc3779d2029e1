/* checksum.h -- size, crc32, md5 and sha1 of a file's bytes.
 *
 * crc32 comes from zlib, md5 and sha1 from OpenSSL's EVP interface (both
 * libraries are loaded anyway by libpng and libcurl).  Text forms are
 * lower-case hex as `_img` writes them; the raw digests serve the 4chan md5
 * comparison and --save-dir's file names.
 */
#ifndef IMGFEED_CHECKSUM_H
#define IMGFEED_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct checksum_set {
    uint32_t crc32;
    unsigned char md5[16];
    unsigned char sha1[20];
    char crc32_hex[9];
    char md5_hex[33];
    char sha1_hex[41];
} checksum_set;

/* Fills OUT with the checksums of the LEN bytes at DATA. */
void checksum_compute(const unsigned char *data, size_t len, checksum_set *out);

/* Standard base64 of LEN bytes (with padding) into OUT, which holds
 * 4*((len+2)/3)+1 bytes.  4chan's `md5` field is base64 of the raw digest. */
void checksum_base64(const unsigned char *data, size_t len, char *out);

#endif
