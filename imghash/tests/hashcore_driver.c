/* hashcore_driver.c -- ih_hashes_compute() on raw gray images, for
 * test_hashcore.py.
 *
 * Reads records from standard input: three little-endian int32 (width,
 * height, hash size) followed by width * height gray bytes.  For each it
 * prints one line: the four hashes in imagehash's hex (ahash, dhash, phash,
 * whash), then the same four in `_img`'s base64, separated by spaces;
 * or "error" when ih_hashes_compute() fails.  No decoding is involved, so
 * the test checks the hash core alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "imghash/imghash.h"

static int driver_read_header(int32_t header[3]) {
    unsigned char b[12];
    if (fread(b, 1, sizeof b, stdin) != sizeof b) return -1;
    for (int i = 0; i < 3; i++)
        header[i] = (int32_t)((uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                              (uint32_t)b[4 * i + 3] << 24);
    return 0;
}

static void driver_print(const ih_hashes *set) {
    const ih_bits *all[4] = {&set->ahash, &set->dhash, &set->phash, &set->whash};
    char text[IH_HASHENC_BASE64_LEN(IH_HASH_MAX_BITS) + IH_HASHENC_HEX_LEN(IH_HASH_MAX_BITS)];
    for (int i = 0; i < 4; i++) {
        ih_hashenc_hex(all[i], text);
        printf("%s ", text);
    }
    for (int i = 0; i < 4; i++) {
        ih_hashenc_base64(all[i], text);
        printf(i < 3 ? "%s " : "%s\n", text);
    }
}

int main(void) {
    int32_t header[3];
    static ih_hashes set;
    while (driver_read_header(header) == 0) {
        size_t size = (size_t)header[0] * (size_t)header[1];
        ih_gray image = {.width = header[0], .height = header[1], .pixels = malloc(size ? size : 1)};
        if (!image.pixels || fread(image.pixels, 1, size, stdin) != size) {
            fprintf(stderr, "hashcore_driver: short input\n");
            return 2;
        }
        if (ih_hashes_compute(&image, header[2], &set) < 0)
            printf("error\n");
        else
            driver_print(&set);
        free(image.pixels);
    }
    return 0;
}
