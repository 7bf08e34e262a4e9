/* pthread_cancel as programs call it: libweft's pthread.h overlay renames
 * it to weft_pthread_cancel, which is alone in this object with the
 * weft_cancel_linked marker, so only a program that calls pthread_cancel
 * links the marker, and chain mode's waits know the program can cancel
 * (cancel.h). (weft-cc's --wrap cannot say this: the linker takes every
 * __wrap_ definition in whether or not the wrapped symbol is used.) */
#define WEFT_CANCEL_MARKER
#include <pthread.h>

#include "cancel.h"

const char weft_cancel_linked = 1;

int weft_pthread_cancel(pthread_t thread) { return weft_cancel_request(thread); }
