#ifndef CFLIPTSQLITE_SHIM_H
#define CFLIPTSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLite's SQLITE_TRANSIENT destructor marker (a cast of -1), which Swift cannot import as a macro.
/// Binding with it makes SQLite copy the bytes before the bind call returns.
static inline sqlite3_destructor_type cflipt_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

/// The SQLite version this module was compiled against (SQLITE_VERSION_NUMBER), for diagnostics.
static inline int cflipt_sqlite_header_version_number(void) {
    return SQLITE_VERSION_NUMBER;
}

#endif
