# Finds imgfeed's libraries through pkg-config (Debian's -dev packages ship a
# .pc file for each) and exposes them as imported targets PkgConfig::<name>.
# A missing one stops configuration with the Debian package to install.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

function(imgfeed_require_pkg name module debian_package)
  pkg_check_modules(${name} IMPORTED_TARGET ${module})
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${debian_package}")
  endif()
endfunction()

imgfeed_require_pkg(RABBITMQ librabbitmq librabbitmq-dev)
imgfeed_require_pkg(CURL libcurl libcurl4-openssl-dev)
imgfeed_require_pkg(JSONC json-c libjson-c-dev)
imgfeed_require_pkg(PQ libpq libpq-dev)
imgfeed_require_pkg(GD gdlib libgd-dev)
# imgfeed-live serves its page and event streams with libmicrohttpd.
imgfeed_require_pkg(MHD libmicrohttpd libmicrohttpd-dev)
# imgfeed-export writes its NDJSON parts as zstd frames with libzstd.
imgfeed_require_pkg(ZSTD libzstd libzstd-dev)
if(IMGFEED_TESTS)
  imgfeed_require_pkg(CMOCKA cmocka libcmocka-dev)
endif()

# The hash library (imghash/) decodes with the codec libraries directly where
# libgd's result differs from Pillow's (see imghash/decode.c), and checksums
# with zlib's crc32 and OpenSSL's md5/sha1.
imgfeed_require_pkg(JPEG libjpeg libjpeg62-turbo-dev)
imgfeed_require_pkg(PNG libpng libpng-dev)
imgfeed_require_pkg(WEBP libwebp libwebp-dev)
imgfeed_require_pkg(WEBPDEMUX libwebpdemux libwebp-dev)
imgfeed_require_pkg(ZLIB zlib zlib1g-dev)
imgfeed_require_pkg(CRYPTO libcrypto libssl-dev)
# giflib ships no .pc file.
find_path(GIF_INCLUDE_DIR gif_lib.h)
find_library(GIF_LIBRARY gif)
if(NOT GIF_INCLUDE_DIR OR NOT GIF_LIBRARY)
  message(FATAL_ERROR "giflib not found: apt-get install libgif-dev")
endif()
add_library(Imgfeed::GIF UNKNOWN IMPORTED)
set_target_properties(Imgfeed::GIF PROPERTIES IMPORTED_LOCATION ${GIF_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${GIF_INCLUDE_DIR})
