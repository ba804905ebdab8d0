// The declaration in include/CLibFuzzer.h is defined by libFuzzer, linked in by `-sanitize=fuzzer`.
#include "CLibFuzzer.h"
