/* Weft's sys/signal.h: <signal.h>, as glibc's is (wasi-libc's warns that
 * the include is wrong, which -Werror turns into an error). */
#include <signal.h>
