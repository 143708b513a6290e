// libargon2, the reference implementation of Argon2 (RFC 9106) by its designers.
#include <argon2.h>
