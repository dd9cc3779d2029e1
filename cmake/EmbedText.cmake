# imgfeed_embed_text(INPUT OUTPUT SYMBOL)
#
# Writes OUTPUT, a C file defining `const char SYMBOL[]` with the bytes of
# INPUT and a final NUL, so that a program carries a text file (the
# archiver's schema.sql) without reading it at run time.  The file is
# written at configure time, and CMake configures again when INPUT changes.
function(imgfeed_embed_text input output symbol)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${input})
  file(READ ${input} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(text "/* Generated from ${input} by cmake/EmbedText.cmake; do not edit. */\n")
  string(APPEND text "const char ${symbol}[] = {${bytes}0x00};\n")
  file(CONFIGURE OUTPUT ${output} CONTENT "${text}" @ONLY)
endfunction()

# imgfeed_embed_page(OUTVAR PREFIX)
#
# The page of a program's web/ folder (index.html, app.js, style.css) as
# three C files defining PREFIX_index_html, PREFIX_app_js and
# PREFIX_style_css; their paths are appended to OUTVAR.
function(imgfeed_embed_page outvar prefix)
  set(files ${${outvar}})
  foreach(pair "index.html;index_html" "app.js;app_js" "style.css;style_css")
    list(GET pair 0 file)
    list(GET pair 1 name)
    imgfeed_embed_text(${CMAKE_CURRENT_SOURCE_DIR}/web/${file} ${CMAKE_CURRENT_BINARY_DIR}/${prefix}_${name}.c
                       ${prefix}_${name})
    list(APPEND files ${CMAKE_CURRENT_BINARY_DIR}/${prefix}_${name}.c)
  endforeach()
  set(${outvar} ${files} PARENT_SCOPE)
endfunction()
