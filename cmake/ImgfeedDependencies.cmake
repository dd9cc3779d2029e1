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
if(IMGFEED_TESTS)
  imgfeed_require_pkg(CMOCKA cmocka libcmocka-dev)
endif()
