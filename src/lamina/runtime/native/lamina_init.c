/* lamina-init: PID 1 of an execution environment whose function has external extensions.
 *
 * Usage (by lamina.runtime.sandbox, never by hand):
 *   lamina-init CONTROL_FD REPORT_FD EXTENSION_OUT_FD N PATH_1..PATH_N M ENV_1..ENV_M -- RUNTIME_ARGV...
 *
 * - Starts each extension PATH_i in order (argv = [PATH_i], the variables of init's own environment
 *   named ENV_1..ENV_M (names only on the command line: /proc/1/cmdline shows no value), stdout
 *   and stderr on EXTENSION_OUT_FD, or init's own stdout when it is -1, its own process group
 *   as AWS's agents get), then waits on CONTROL_FD.
 * - Control bytes: 'r' starts the runtime (RUNTIME_ARGV, init's own environment, looked up on
 *   its PATH, init's stdout/stderr), once; 't' starts the shutdown: SIGTERM to the runtime;
 *   'x' sends SIGKILL to the runtime; 'k' or end of file ends init at once (the kernel then
 *   kills every process of the PID namespace).
 * - Reports on REPORT_FD, one line each: "S i pid" (extension i started), "F i errno" (it could
 *   not be started), "X i status" (it exited; status as wait(2) gives it), "R pid" (runtime
 *   started), "L errno" (it could not be), "E status" (it exited). After "E" init exits with
 *   the runtime's code (128 + signal when killed by one), unless a 't' came first: in the
 *   shutdown the extensions outlive the runtime, and init exits (with the runtime's code)
 *   once the runtime and every extension have exited, or at 'k' or end of file.
 * - No descriptor of init's reaches a child (all close on exec). Orphans are reaped. Writes
 *   are retried on EINTR and partial writes; a reader that went away is ignored. Init is not
 *   dumpable, so the processes it starts (same uid) cannot ptrace it or read its memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_EXTENSIONS 64

extern char **environ;

static int report_fd = -1;
static pid_t ext_pids[MAX_EXTENSIONS];
static int n_ext;
static pid_t runtime_pid = -1;
static int runtime_status = -1; /* wait(2) status once the runtime exited */
static int shutting_down;      /* a 't' came: the runtime's exit no longer ends init */
static sigset_t old_mask;

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* the server went away: nothing to tell */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void report(const char *fmt, long a, long b, int two) {
    char line[64];
    int n = two ? snprintf(line, sizeof line, fmt, a, b) : snprintf(line, sizeof line, fmt, a);
    if (n > 0 && report_fd >= 0)
        write_all(report_fd, line, (size_t)n);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0)
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* fork+exec; returns the pid, or -errno when the fork or the exec failed. */
static pid_t launch(char *const argv[], char *const envp[], int out_fd, int own_group, int search) {
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(err_pipe[0]);
        close(err_pipe[1]);
        return -e;
    }
    if (pid == 0) {
        int e;
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        if (own_group)
            setpgid(0, 0);
        if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)) {
            e = errno;
        } else {
            if (search)
                execvpe(argv[0], argv, envp);
            else
                execve(argv[0], argv, envp);
            e = errno;
        }
        write_all(err_pipe[1], (const char *)&e, sizeof e);
        _exit(127);
    }
    close(err_pipe[1]);
    int e = 0;
    size_t got = 0;
    while (got < sizeof e) {
        ssize_t n = read(err_pipe[0], (char *)&e + got, sizeof e - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(err_pipe[0]);
    if (got == 0)
        return pid; /* the exec closed the pipe: it succeeded */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return -(got == sizeof e && e > 0 ? e : EIO);
}

static int exit_code(int status) {
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

static void reap(void) {
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        if (pid == runtime_pid) {
            runtime_pid = 0;
            runtime_status = status;
            report("E %ld\n", status, 0, 0);
            if (!shutting_down)
                _exit(exit_code(status)); /* the kernel kills the rest of the namespace */
        }
        for (int i = 0; i < n_ext; i++) {
            if (ext_pids[i] == pid) {
                ext_pids[i] = 0;
                report("X %ld %ld\n", i, status, 1);
            }
        }
    }
}

/* In the shutdown: once the runtime and every extension have exited, init's work is done. */
static void end_if_all_gone(void) {
    if (!shutting_down || runtime_pid > 0)
        return;
    for (int i = 0; i < n_ext; i++)
        if (ext_pids[i] > 0)
            return;
    _exit(runtime_status >= 0 ? exit_code(runtime_status) : 0);
}

static void usage(void) {
    static const char msg[] = "lamina-init: bad arguments (started by lamina only)\n";
    write_all(2, msg, sizeof msg - 1);
    _exit(126);
}

int main(int argc, char **argv) {
    long control_fd, rep, ext_out, n, m;
    if (argc < 7 || parse_int(argv[1], 0, INT_MAX, &control_fd) || parse_int(argv[2], 0, INT_MAX, &rep) ||
        parse_int(argv[3], -1, INT_MAX, &ext_out) || parse_int(argv[4], 0, MAX_EXTENSIONS, &n))
        usage();
    int at = 5;
    char **paths = argv + at;
    at += (int)n;
    if (at >= argc || parse_int(argv[at], 0, argc, &m))
        usage();
    at++;
    char **ext_env = argv + at; /* NULL-terminated below */
    at += (int)m;
    if (at >= argc - 1 || strcmp(argv[at], "--") != 0)
        usage();
    argv[at] = NULL; /* ends ext_env */
    /* ENV_i name variables of init's own environment: each becomes that NAME=value (absent: left out). */
    int kept = 0;
    for (long i = 0; i < m; i++) {
        size_t len = strlen(ext_env[i]);
        for (char **e = environ; *e != NULL; e++) {
            if (len > 0 && strncmp(*e, ext_env[i], len) == 0 && (*e)[len] == '=') {
                ext_env[kept++] = *e;
                break;
            }
        }
    }
    ext_env[kept] = NULL;
    char **runtime_argv = argv + at + 1;
    report_fd = (int)rep;
    n_ext = (int)n;
    cloexec((int)control_fd);
    cloexec(report_fd);
    if (ext_out >= 0)
        cloexec((int)ext_out);

    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN); /* a report nobody reads is dropped; children get SIG_DFL back */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    int sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0)
        _exit(125);

    for (int i = 0; i < n_ext; i++) {
        char *ext_argv[2] = {paths[i], NULL};
        pid_t pid = launch(ext_argv, ext_env, (int)ext_out, 1, 0);
        if (pid < 0) {
            report("F %ld %ld\n", i, -pid, 1);
        } else {
            ext_pids[i] = pid;
            report("S %ld %ld\n", i, pid, 1);
        }
    }

    int control_open = 1;
    for (;;) {
        struct pollfd fds[2] = {{sig_fd, POLLIN, 0}, {(int)control_fd, POLLIN, 0}};
        if (poll(fds, control_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(125);
        }
        if (fds[0].revents) {
            struct signalfd_siginfo info;
            while (read(sig_fd, &info, sizeof info) > 0)
                ;
            reap();
            end_if_all_gone();
        }
        if (control_open && fds[1].revents) {
            char buf[64];
            ssize_t got = read((int)control_fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0)
                _exit(137); /* the server is gone or closed the sandbox: end everything */
            for (ssize_t i = 0; i < got; i++) {
                if (buf[i] == 'k') {
                    _exit(137);
                } else if (buf[i] == 't') {
                    shutting_down = 1;
                    if (runtime_pid > 0)
                        kill(runtime_pid, SIGTERM);
                    end_if_all_gone();
                } else if (buf[i] == 'x') {
                    if (runtime_pid > 0)
                        kill(runtime_pid, SIGKILL);
                } else if (buf[i] == 'r' && runtime_pid < 0 && !shutting_down) {
                    pid_t pid = launch(runtime_argv, environ, -1, 0, 1);
                    if (pid < 0) {
                        report("L %ld\n", -pid, 0, 0);
                        _exit(127);
                    }
                    runtime_pid = pid;
                    report("R %ld\n", pid, 0, 0);
                }
            }
        }
    }
}
