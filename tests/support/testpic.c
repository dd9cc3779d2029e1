/* testpic.c -- the tests' generated pictures; see testpic.h. */
#include "testpic.h"

#include <stdint.h>

gdImagePtr testpic_original(int k) {
    enum { W = TESTPIC_W, H = TESTPIC_H };
    gdImagePtr im = gdImageCreateTrueColor(W, H);
    uint32_t r = 2654435761u * (uint32_t)(k + 1);
    for (int y = 0; y < H; y++) {
        int c = gdImageColorAllocate(im, (y * (k + 1) * 3) % 256, (y + k * 40) % 256, (255 - y + k * 17) % 256);
        gdImageLine(im, 0, y, W - 1, y, c);
    }
    for (int s = 0; s < 7; s++) {
        r = r * 1103515245u + 12345u;
        int x = (int)(r >> 8) % W, y = (int)(r >> 16) % H, w = 30 + (int)(r >> 4) % 120, h = 30 + (int)(r >> 12) % 90;
        int c = gdImageColorAllocate(im, (int)(r >> 3) % 256, (int)(r >> 9) % 256, (int)(r >> 21) % 256);
        if (s % 2)
            gdImageFilledEllipse(im, x, y, w, h, c);
        else
            gdImageFilledRectangle(im, x - w / 2, y - h / 2, x + w / 2, y + h / 2, c);
    }
    return im;
}
