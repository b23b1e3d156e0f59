// Code without unwind information (built with -fno-asynchronous-unwind-tables -fno-unwind-tables)
// that also holds a garbage frame pointer: an unwinder that guesses through rbp must not crash.
extern "C" __attribute__((noinline)) void spin_without_unwind_info() {
  asm volatile(
      "mov $0x10, %%rbp\n"
      "1: pause\n"
      "jmp 1b\n" ::: "rbp", "memory");
}
