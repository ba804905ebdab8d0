#ifndef C_LIB_FUZZER_H
#define C_LIB_FUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for programs that have their own `main` (SwiftPM renames an executable's entry point, so
/// the `main` that `-sanitize=fuzzer` links in is not the one that runs). It parses libFuzzer's flags from
/// argc/argv and calls `callback` once per input.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
