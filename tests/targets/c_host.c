/* A host written in C, compiled as C: uses the whole C API of periscope/periscope_c.h.
 * Prints "socket PATH" once the agent runs, then serves stdin:
 *   "slow"  runs a request named "c-slow" (threshold 50 ms) for 300 ms, begun on the main thread and
 *           ended on another (detach/attach); prints "done"
 *   EOF     stops the agent and exits 0. */
#include <periscope/periscope_c.h>
#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_level = 3;

static void greet(void* user, int argc, const char* const* argv, periscope_output_t* out) {
  const char* greeting = (const char*)user;
  periscope_output_append(out, greeting, strlen(greeting));
  for (int i = 0; i < argc; ++i) {
    periscope_output_append(out, " ", 1);
    periscope_output_append(out, argv[i], strlen(argv[i]));
  }
}

static void refuse(void* user, int argc, const char* const* argv, periscope_output_t* out) {
  (void)user, (void)argc, (void)argv;
  periscope_output_fail(out, "refused by the C host");
}

static void get_level(void* user, periscope_output_t* out) {
  char text[16];
  int n = snprintf(text, sizeof text, "%d", *(int*)user);
  periscope_output_append(out, text, (size_t)n);
}

static void set_level(void* user, const char* value, periscope_output_t* error) {
  char* end = NULL;
  long v = strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < 0 || v > 9) {
    periscope_output_fail(error, "level must be 0..9");
    return;
  }
  *(int*)user = (int)v;
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Resumes a request begun on the main thread and ends it here. */
static void* resume_elsewhere(void* request) {
  periscope_request_attach((periscope_request_t*)request);
  sleep_ms(200);
  periscope_request_end((periscope_request_t*)request);
  return NULL;
}

int main(void) {
  if (periscope_add_command("greet", "[NAME...]", "says hello from C", greet, (void*)"hello from C") != 0) return 2;
  if (periscope_add_command("refuse", "", "always fails", refuse, NULL) != 0) return 2;
  if (periscope_add_variable("level", "a level from 0 to 9", get_level, set_level, &g_level) != 0) return 2;
  if (periscope_add_command("", "", "no name", refuse, NULL) == 0) return 3; /* must be refused */
  if (periscope_set_slow_threshold("c-slow", 50) != 0) return 2;
  if (periscope_start() != 0) return 4;
  char path[256];
  size_t n = periscope_socket_path(path, sizeof path);
  if (n == 0 || n >= sizeof path || !periscope_running()) return 5;
  char tiny[4];
  if (periscope_socket_path(tiny, sizeof tiny) != n || strlen(tiny) != 3) return 6; /* cut, and says so */
  char http[64];
  if (periscope_http_endpoint(http, sizeof http) != 0) return 8; /* no PERISCOPE_HTTP: no endpoint */
  printf("socket %s\n", path);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strcmp(line, "slow\n") == 0) {
      periscope_request_t* r = periscope_request_begin_id("c-slow", 7);
      sleep_ms(100);
      periscope_request_detach(r); /* it moves to another thread, as in a thread pool */
      pthread_t resumer;
      if (pthread_create(&resumer, NULL, resume_elsewhere, r) != 0) return 9;
      pthread_join(resumer, NULL);
      printf("done\n");
      fflush(stdout);
    }
  }
  periscope_stop();
  return periscope_running() ? 7 : 0;
}
