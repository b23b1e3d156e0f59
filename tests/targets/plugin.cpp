// A library the stack tests dlopen after the agent started: its function must still be named.
#include <pthread.h>

extern "C" __attribute__((noinline, visibility("default"))) void plugin_spin() {
  // Not thread_local: in a shared library that is a call to __tls_get_addr (through the PLT) in
  // the loop, and the innermost frame would be an unnamed PLT stub. One thread runs this.
  static volatile unsigned long sink = 0;
  for (;;) sink = sink + 1;  // marker: plugin
}
