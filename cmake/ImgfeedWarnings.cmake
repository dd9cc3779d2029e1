# Compiler flags shared by every target: C11 without GNU extensions (POSIX
# comes from _POSIX_C_SOURCE), the warnings we hold the code to, and the
# sanitizer build.
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wformat=2 -Wno-unused-parameter)
if(IMGFEED_WERROR)
  add_compile_options(-Werror)
endif()
if(IMGFEED_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
