/* periscope agent: the C API, for hosts written in C (C99 or later) or anything that speaks C.
 * The same agent as periscope.h (C++), which includes this header. See docs/api.md.
 *
 * Contract: every function is thread-safe, never aborts the host, and is cheap when the agent is
 * off. Functions that can fail return 0 on success and -1 on failure; the reason is printed on
 * stderr in one line. Variable getters and setters run on the agent's own thread, commands on a
 * thread of their own each (at most 4 at once; their client waits PERISCOPE_COMMAND_TIMEOUT_MS):
 * make them thread-safe against your threads. */
#ifndef PERISCOPE_PERISCOPE_C_H
#define PERISCOPE_PERISCOPE_C_H

#include <stddef.h>

#define PERISCOPE_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lifecycle. Options come from the PERISCOPE_* environment variables (docs/configuration.md). */
PERISCOPE_API int periscope_start(void);
PERISCOPE_API void periscope_stop(void);
PERISCOPE_API int periscope_running(void);

/* The manhole socket ("/run/user/1000/periscope/4242.sock") or the HTTP endpoint
 * ("127.0.0.1:9464") of the running agent, copied into `buffer` with a terminating NUL. Returns
 * the length of the whole text (like snprintf: a result >= `size` means it was cut), 0 when the
 * agent is not running or has no such endpoint. */
PERISCOPE_API size_t periscope_socket_path(char* buffer, size_t size);
PERISCOPE_API size_t periscope_http_endpoint(char* buffer, size_t size);

/* ---- Slow-request watchdog. begin returns NULL when the agent is off; every other call accepts
 * NULL. The name is copied (cut at 47 bytes); no allocation, no lock. */
typedef struct periscope_request periscope_request_t;
PERISCOPE_API periscope_request_t* periscope_request_begin(const char* name);
PERISCOPE_API periscope_request_t* periscope_request_begin_id(const char* name, unsigned long long id);
PERISCOPE_API void periscope_request_end(periscope_request_t* request);
/* For thread pools: detach when the request leaves this thread, attach on the one that resumes it. */
PERISCOPE_API void periscope_request_detach(periscope_request_t* request);
PERISCOPE_API void periscope_request_attach(periscope_request_t* request);
/* A threshold for requests of one name, overriding PERISCOPE_SLOW_MS; kept across start/stop. */
PERISCOPE_API int periscope_set_slow_threshold(const char* name, long long milliseconds);

/* ---- Application commands and live variables, shown by `help` and `vars` in the manhole.
 * A callback writes its answer into `out`; periscope_output_fail() turns it into an error the user
 * sees (the command fails, the setter rejects the value). */
typedef struct periscope_output periscope_output_t;
PERISCOPE_API void periscope_output_append(periscope_output_t* out, const char* text, size_t length);
PERISCOPE_API void periscope_output_fail(periscope_output_t* out, const char* message);

/* `usage` is the argument spec ("NAME [VALUE]", "[ITEM...]"): the argument count is checked before
 * `handler` runs. argv[0..argc) are the words after the command's name. */
typedef void (*periscope_command_fn)(void* user, int argc, const char* const* argv, periscope_output_t* out);
PERISCOPE_API int periscope_add_command(const char* name, const char* usage, const char* help,
                                        periscope_command_fn handler, void* user);

/* `setter` may be NULL (read-only variable); it rejects a value with periscope_output_fail(). */
typedef void (*periscope_getter_fn)(void* user, periscope_output_t* out);
typedef void (*periscope_setter_fn)(void* user, const char* value, periscope_output_t* error);
PERISCOPE_API int periscope_add_variable(const char* name, const char* help, periscope_getter_fn getter,
                                         periscope_setter_fn setter, void* user);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* PERISCOPE_PERISCOPE_C_H */
