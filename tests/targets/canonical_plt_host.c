/* A host built without PIE whose code takes malloc's and free's addresses: the executable then has
   "canonical PLT entries" for them (undefined symbols whose value is its PLT stub), which is what
   dlsym(RTLD_DEFAULT, "malloc") returns. The agent once took that stub for the allocator after
   it, and the host hung at its first allocation. Allocates through the taken addresses and
   through calls, and prints "ok N" with the bytes it checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* (*volatile g_allocate)(size_t);
void (*volatile g_release)(void*);

int main(void) {
  size_t checked = 0;
  int round;
  g_allocate = malloc;
  g_release = free;
  for (round = 0; round < 1000; ++round) {
    size_t size = 16 + (size_t)round * 64;
    char* a = g_allocate(size);
    char* b = malloc(size);
    if (!a || !b) return 2;
    memset(a, 1, size);
    memset(b, 2, size);
    checked += size * 2;
    g_release(a);
    free(b);
  }
  printf("ok %lu\n", (unsigned long)checked);
  return 0;
}
