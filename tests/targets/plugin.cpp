// A library the stack tests dlopen after the agent started: its function must still be named.
#include <pthread.h>

extern "C" __attribute__((noinline, visibility("default"))) void plugin_spin() {
  static thread_local volatile unsigned long sink = 0;
  for (;;) sink = sink + 1;  // marker: plugin
}
