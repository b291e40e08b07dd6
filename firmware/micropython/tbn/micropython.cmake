# tbn as a MicroPython user C module for CMake ports (esp32, rp2):
#   make USER_C_MODULES=<this repo>/firmware/micropython/tbn/micropython.cmake
add_library(usermod_tbn INTERFACE)
set(TBN_RUNTIME ${CMAKE_CURRENT_LIST_DIR}/../../lib/tbn)
file(GLOB TBN_RUNTIME_SOURCES ${TBN_RUNTIME}/src/*.c ${TBN_RUNTIME}/src/kernels/*.c)
target_sources(usermod_tbn INTERFACE ${CMAKE_CURRENT_LIST_DIR}/modtbn.c ${TBN_RUNTIME_SOURCES})
target_include_directories(usermod_tbn INTERFACE ${TBN_RUNTIME}/include)
target_link_libraries(usermod INTERFACE usermod_tbn)
