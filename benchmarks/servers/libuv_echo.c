/* bench_libuv: the echo peer on libuv (uv_tcp_t streams, uv_signal, uv_timer), one loop.
 *
 * Memory: alloc_cb hands every connection the same 64 KiB loop-wide buffer. That is safe because
 * read_cb consumes the bytes before returning: uv_try_write() sends what the kernel takes, and
 * only the remainder is copied into a uv_write request, during which reading is stopped. An idle
 * connection costs its uv_tcp_t wrapper and nothing else. libuv's epoll backend is
 * level-triggered.
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <uv.h>

#define READ_SIZE (64 * 1024)

struct conn {
    uv_tcp_t tcp; /* first member: a uv_handle_t* is also a struct conn* */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char* out; /* the part of an echo the kernel refused; owned by wreq while writing */
    int writing;
    int peer_eof;
    int fin_asked;
    int fin_done;
    int closing;
    struct conn *prev, *next;
};

static uv_loop_t* loop;
static uv_tcp_t server;
static uv_signal_t sig_term, sig_int;
static uv_timer_t stop_timer;
static struct conn* conns;
static size_t live;
static int stopping;
static char rbuf[READ_SIZE];

static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h, (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t* h) {
    struct conn* c = (struct conn*)h;
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out);
    free(c);
    if (--live == 0 && stopping) uv_close((uv_handle_t*)&stop_timer, NULL);
}

static void conn_close(struct conn* c) {
    if (c->closing) return;
    c->closing = 1;
    uv_close((uv_handle_t*)&c->tcp, on_closed);
}

static void on_shutdown(uv_shutdown_t* req, int status) {
    struct conn* c = req->data;
    c->fin_done = 1;
    /* Our FIN is out; the end waits for the peer's unless it came already. */
    if (status < 0 || c->peer_eof) conn_close(c);
}

/* uv_shutdown waits for queued writes, so the FIN always follows the last echoed byte. */
static void send_fin(struct conn* c) {
    if (c->fin_asked || c->closing) return;
    c->fin_asked = 1;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t*)&c->tcp, on_shutdown) < 0) conn_close(c);
}

static void on_written(uv_write_t* req, int status) {
    struct conn* c = req->data;
    free(c->out);
    c->out = NULL;
    c->writing = 0;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->closing || c->peer_eof || stopping) return; /* the shutdown request finishes it */
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    struct conn* c = (struct conn*)s;
    if (n == 0) return; /* EAGAIN */
    if (n == UV_EOF) {
        c->peer_eof = 1;
        uv_read_stop(s);
        if (!c->fin_asked)
            send_fin(c);
        else if (c->fin_done)
            conn_close(c); /* both FINs are out: nothing more can arrive */
        return;
    }
    if (n < 0) {
        conn_close(c); /* ECONNRESET and the like */
        return;
    }
    if (stopping) return; /* read after the stop began: drained, not echoed */
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    int k = uv_try_write(s, &b, 1);
    if (k == UV_EAGAIN) k = 0;
    if (k < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)k == (size_t)n) return;
    size_t rest = (size_t)n - (size_t)k;
    c->out = malloc(rest);
    if (!c->out) abort();
    memcpy(c->out, buf->base + k, rest);
    b = uv_buf_init(c->out, (unsigned)rest);
    c->wreq.data = c;
    c->writing = 1;
    uv_read_stop(s); /* stop reading until the kernel has taken the remainder */
    if (uv_write(&c->wreq, s, &b, 1, on_written) < 0) {
        c->writing = 0;
        conn_close(c);
    }
}

static void on_connection(uv_stream_t* srv, int status) {
    if (status < 0) return;
    struct conn* c = calloc(1, sizeof *c);
    if (!c) abort();
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(srv, (uv_stream_t*)&c->tcp) < 0) {
        uv_close((uv_handle_t*)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    live++;
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void on_deadline(uv_timer_t* t) {
    (void)t;
    fprintf(stderr, "stop deadline: aborting %zu connections\n", live);
    for (struct conn* c = conns; c; c = c->next) {
        if (c->closing) continue;
        /* uv_tcp_close_reset() refuses a handle with a shutdown pending, so set the zero linger
         * by hand: close then sends RST. */
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t*)&c->tcp, &fd) == 0) {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        conn_close(c);
    }
}

static void on_signal(uv_signal_t* h, int signum) {
    (void)h, (void)signum;
    if (stopping) return;
    stopping = 1;
    uv_close((uv_handle_t*)&server, NULL);
    uv_close((uv_handle_t*)&sig_term, NULL);
    uv_close((uv_handle_t*)&sig_int, NULL);
    uv_timer_start(&stop_timer, on_deadline, 5000, 0);
    for (struct conn* c = conns; c; c = c->next) {
        if (c->closing) continue;
        /* Keep reading (and dropping) to the peer's EOF, even while the last echo drains. */
        if (!c->peer_eof) uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
        send_fin(c);
    }
    if (live == 0) uv_close((uv_handle_t*)&stop_timer, NULL);
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--host H] [--port N]\n", argv[0]);
            return 2;
        }
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    loop = uv_default_loop();
    struct sockaddr_in sa;
    int rc = uv_ip4_addr(host, port, &sa);
    /* uv_tcp_bind sets SO_REUSEADDR itself. */
    if (rc == 0) rc = uv_tcp_init(loop, &server);
    if (rc == 0) rc = uv_tcp_bind(&server, (const struct sockaddr*)&sa, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t*)&server, INT_MAX, on_connection);
    if (rc < 0) {
        fprintf(stderr, "listen %s:%d: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    int sl = sizeof sa;
    uv_tcp_getsockname(&server, (struct sockaddr*)&sa, &sl);

    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_timer_init(loop, &stop_timer);

    char addr[64];
    uv_ip4_name(&sa, addr, sizeof addr);
    printf("listening on %s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
