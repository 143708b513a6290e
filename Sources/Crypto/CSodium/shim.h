// libsodium: its Argon2id (crypto_pwhash, one lane) has SIMD block functions chosen at run time.
#include <sodium.h>
