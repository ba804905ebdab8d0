#ifndef CFLIPTZLIB_SHIM_H
#define CFLIPTZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 is a macro (it passes the library version and the stream's size); Swift cannot call macros.
static inline int cflipt_deflate_init2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}

/// inflateInit2 is a macro too.
static inline int cflipt_inflate_init2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

#endif
