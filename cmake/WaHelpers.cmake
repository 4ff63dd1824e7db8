# Helpers shared by every module, so that each module and test directory stands alone.
# SPDX-License-Identifier: GPL-3.0-or-later

# wa_add_module(NAME <target> [DEPS <targets/libs>...])
# A static library from every .c file in the calling directory. Include root is lib/ and
# include/ (so code writes #include "core/buf.h" and #include "wa/error.h").
function(wa_add_module)
  cmake_parse_arguments(M "" "NAME" "DEPS;SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  add_library(${M_NAME} STATIC ${srcs} ${M_SOURCES})
  target_include_directories(${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/lib ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${M_NAME} PUBLIC ${M_DEPS})
endfunction()

# wa_add_unit_test(NAME <name> SOURCES <files>... LIBS <targets>... [LABELS ...])
# A cmocka test executable registered with ctest (label "unit" plus LABELS).
function(wa_add_unit_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "unit;${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "WA_SOURCE_DIR=${PROJECT_SOURCE_DIR};WA_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()

# wa_add_fuzz_target(NAME <name> SOURCES <file> LIBS <targets>...)
# The source defines LLVMFuzzerTestOneInput. Its seed corpus is tests/fuzz/<name>/corpus.
# - With WA_FUZZ (clang): a libFuzzer binary fuzz_<name>; ctest runs it on the corpus for
#   WA_FUZZ_SECONDS (label "fuzz"), new inputs going to a scratch dir, not the checked-in corpus.
# - Otherwise: a replay driver (tests/fuzz/replay.c) that feeds every corpus file once; ctest
#   runs it (labels "unit;replay"), so the sanitizer build replays the corpora too.
function(wa_add_fuzz_target)
  cmake_parse_arguments(F "" "NAME" "SOURCES;LIBS" ${ARGN})
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/${F_NAME}/corpus)
  if(WA_FUZZ)
    add_executable(fuzz_${F_NAME} ${F_SOURCES})
    target_compile_options(fuzz_${F_NAME} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${F_NAME} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${F_NAME} PRIVATE ${F_LIBS})
    add_test(NAME fuzz_${F_NAME}
      COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
        sh -c "mkdir -p work_${F_NAME} && exec $<TARGET_FILE:fuzz_${F_NAME}> -max_total_time=${WA_FUZZ_SECONDS} -max_len=65536 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 work_${F_NAME} ${corpus}")
    set_tests_properties(fuzz_${F_NAME} PROPERTIES LABELS "fuzz" TIMEOUT 600)
  else()
    add_executable(replay_${F_NAME} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay.c)
    target_link_libraries(replay_${F_NAME} PRIVATE ${F_LIBS})
    add_test(NAME replay_${F_NAME} COMMAND replay_${F_NAME} ${corpus})
    set_tests_properties(replay_${F_NAME} PROPERTIES LABELS "unit;replay" TIMEOUT 300)
  endif()
endfunction()
