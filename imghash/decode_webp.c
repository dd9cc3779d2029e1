/* decode_webp.c -- WebP to Pillow's gray, with libwebp.
 *
 * Pillow 9.4 is built with animation support (_webp.HAVE_WEBPANIM), so
 * WebPImagePlugin opens every WebP, still or animated, lossy or lossless,
 * with WebPAnimDecoderNew(data, NULL): default options, non-premultiplied
 * RGBA on a canvas the size of the file's canvas, zeroed, with the first
 * frame drawn on it unblended.  Its mode is "RGB" or "RGBA" depending on
 * whether WebPGetFeatures sees alpha, but convert('L') reads only R, G and
 * B either way.  We make the same calls and apply the L formula to the
 * canvas; the canvas size from WebPGetFeatures is checked first, since the
 * decoder allocates the canvas as soon as it is created.
 *
 * Like Pillow's _accept(), only files whose first chunk is "VP8 ", "VP8L"
 * or "VP8X" are WebP images.  libwebp prints nothing.
 */
#include <stdbool.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "decode_formats.h"

static const char *webpdec_status_text(VP8StatusCode status) {
    switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data";
    default: return "unknown error";
    }
}

/* True when the RIFF header promises more bytes than there are. */
static bool webpdec_truncated(const unsigned char *data, size_t len) {
    if (len < 12) return true;
    uint32_t riff = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 | (uint32_t)data[7] << 24;
    return (uint64_t)riff + 8 > len;
}

/* The canvas size, after Pillow's _accept() check on the first chunk. */
static int webpdec_features(const unsigned char *data, size_t len, WebPBitstreamFeatures *features,
                            char err[IH_DECODE_ERROR_MAX]) {
    if (len < 16 ||
        (memcmp(data + 12, "VP8 ", 4) != 0 && memcmp(data + 12, "VP8L", 4) != 0 && memcmp(data + 12, "VP8X", 4) != 0))
        return webpdec_truncated(data, len) ? ih_decode_fail(err, "truncated image")
                                            : ih_decode_fail(err, "corrupt image: no VP8, VP8L or VP8X chunk");
    VP8StatusCode status = WebPGetFeatures(data, len, features);
    if (status == VP8_STATUS_OK) return 0;
    if (status == VP8_STATUS_NOT_ENOUGH_DATA || webpdec_truncated(data, len))
        return ih_decode_fail(err, "truncated image");
    return ih_decode_fail(err, "corrupt image: %s", webpdec_status_text(status));
}

int ih_decode_webp_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                        char err[IH_DECODE_ERROR_MAX]) {
    WebPBitstreamFeatures features;
    if (webpdec_features(data, len, &features, err) < 0) return -1;
    if (ih_decode_check_size((uint64_t)features.width, (uint64_t)features.height, max_pixels, err) < 0) return -1;

    WebPData webp = {.bytes = data, .size = len};
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&webp, NULL);
    if (!dec)
        return webpdec_truncated(data, len) ? ih_decode_fail(err, "truncated image")
                                            : ih_decode_fail(err, "corrupt image: could not create decoder object");
    WebPAnimInfo info;
    uint8_t *canvas = NULL;
    int timestamp, status = -1;
    if (!WebPAnimDecoderGetInfo(dec, &info)) {
        ih_decode_fail(err, "corrupt image: no animation info");
    } else if (!WebPAnimDecoderGetNext(dec, &canvas, &timestamp) || !canvas) {
        if (webpdec_truncated(data, len))
            ih_decode_fail(err, "truncated image");
        else
            ih_decode_fail(err, "corrupt image: failed to decode the first frame");
    } else if (ih_decode_check_size(info.canvas_width, info.canvas_height, max_pixels, err) == 0 &&
               ih_decode_alloc(out, (int)info.canvas_width, (int)info.canvas_height, err) == 0) {
        ih_decode_rgb_row(out->pixels, canvas, out->width * out->height, 4, &out->colour);
        status = 0;
    }
    WebPAnimDecoderDelete(dec);
    return status;
}

int ih_decode_webp_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]) {
    WebPBitstreamFeatures features;
    if (webpdec_features(data, len, &features, err) < 0) return -1;
    *width = features.width;
    *height = features.height;
    return ih_decode_check_size((uint64_t)features.width, (uint64_t)features.height, 0, err);
}
