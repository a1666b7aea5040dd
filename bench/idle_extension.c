/* An external Lambda extension that does nothing: the idle agent of bench/extensions.py.
 *
 * Built by the benchmark at run time (gcc -O2 -static; never committed), placed in a layer at
 * extensions/<name>, so Lambda starts it as /opt/extensions/<name> in the Init phase. It registers
 * under its file name for INVOKE and SHUTDOWN (POST /2020-01-01/extension/register), marks
 * /tmp/<name>.registered (the benchmark's proof that it ran), then loops on
 * GET /2020-01-01/extension/event/next over one keep-alive HTTP/1.1 connection to
 * $AWS_LAMBDA_RUNTIME_API (an IPv4 address and port), exiting 0 on SHUTDOWN. Responses must carry
 * Content-Length (the Extensions API's do); a closed connection is dialled again once per request.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

static struct sockaddr_in api;
static char api_host[64];
static int conn = -1;
static char buf[BUF + 1];

static void die(const char *what) {
    fprintf(stderr, "[idle-extension] %s\n", what);
    exit(1);
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&api, sizeof api) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(conn, data, len);
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The value of header `name` in the header block `head` (NUL-terminated), copied into `out`. */
static int header(const char *head, const char *name, char *out, size_t cap) {
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ' || *p == '\t') p++;
            size_t n = strcspn(p, "\r\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return 0;
        }
    }
    return -1;
}

/* One request and its response: the status, the header `want` (if not NULL) in `value`, the body
 * (NUL-terminated, in the shared buffer) in `*body`. -1: the connection failed before an answer. */
static int exchange(const char *request, size_t len, const char *want, char *value, size_t vcap, char **body) {
    size_t have = 0;
    char *end = NULL;
    if (conn < 0 && (conn = dial()) < 0) return -1;
    if (send_all(request, len) != 0) goto broken;
    while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
        if (have == BUF) die("response headers too long");
        ssize_t n = read(conn, buf + have, BUF - have);
        if (n <= 0) goto broken;
        have += (size_t)n;
    }
    *end = '\0';
    size_t head_len = (size_t)(end - buf) + 4;
    char length[32];
    if (header(buf, "Content-Length", length, sizeof length) != 0) die("response without Content-Length");
    size_t body_len = strtoul(length, NULL, 10);
    if (head_len + body_len > BUF) die("response too long");
    if (want != NULL && header(buf, want, value, vcap) != 0) value[0] = '\0';
    int status = atoi(buf + 9); /* "HTTP/1.1 200 OK" */
    while (have < head_len + body_len) {
        ssize_t n = read(conn, buf + have, head_len + body_len - have);
        if (n <= 0) goto broken;
        have += (size_t)n;
    }
    buf[head_len + body_len] = '\0';
    *body = buf + head_len;
    return status;
broken:
    close(conn);
    conn = -1;
    return -1;
}

static int exchange_retry(const char *request, size_t len, const char *want, char *value, size_t vcap, char **body) {
    int status = exchange(request, len, want, value, vcap, body);
    return status >= 0 ? status : exchange(request, len, want, value, vcap, body);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    const char *runtime_api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (runtime_api == NULL) die("AWS_LAMBDA_RUNTIME_API is not set");
    const char *colon = strrchr(runtime_api, ':');
    if (colon == NULL || (size_t)(colon - runtime_api) >= sizeof api_host) die("bad AWS_LAMBDA_RUNTIME_API");
    memcpy(api_host, runtime_api, (size_t)(colon - runtime_api));
    api.sin_family = AF_INET;
    api.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, api_host, &api.sin_addr) != 1) die("AWS_LAMBDA_RUNTIME_API is not IPv4:port");

    static char request[1024];
    static char id[128];
    char *body = NULL;
    const char *events = "{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}";
    int len = snprintf(request, sizeof request,
                       "POST /2020-01-01/extension/register HTTP/1.1\r\nHost: %s\r\n"
                       "Lambda-Extension-Name: %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       runtime_api, name, strlen(events), events);
    if (len <= 0 || (size_t)len >= sizeof request) die("name too long");
    int status = exchange_retry(request, (size_t)len, "Lambda-Extension-Identifier", id, sizeof id, &body);
    if (status != 200 || id[0] == '\0') {
        fprintf(stderr, "[idle-extension] register: status %d: %s\n", status, body ? body : "");
        return 1;
    }
    char mark[300];
    snprintf(mark, sizeof mark, "/tmp/%s.registered", name);
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);

    len = snprintf(request, sizeof request,
                   "GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: %s\r\n"
                   "Lambda-Extension-Identifier: %s\r\n\r\n",
                   runtime_api, id);
    if (len <= 0 || (size_t)len >= sizeof request) die("identifier too long");
    for (;;) {
        status = exchange_retry(request, (size_t)len, NULL, NULL, 0, &body);
        if (status != 200) {
            fprintf(stderr, "[idle-extension] event/next: status %d: %s\n", status, body ? body : "");
            return 1;
        }
        if (strstr(body, "\"SHUTDOWN\"") != NULL) return 0;
    }
}
