/* A statically linked program (no dynamic loader, no dlopen): `periscope inject` must refuse it
   and leave it running. Reads stdin until EOF. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  char buf[64];
  printf("ready\n");
  fflush(stdout);
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}
