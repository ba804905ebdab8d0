#ifndef CFLIPTSQLITE_SHIM_H
#define CFLIPTSQLITE_SHIM_H
#include <sqlite3.h>
#endif
