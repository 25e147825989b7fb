/* bench_raw_epoll_tls: the TLS reference echo peer. Plain C, OpenSSL on the socket descriptor
 * (SSL_set_fd, non-blocking), level-triggered epoll, one thread: what a careful hand-written
 * TLS echo server does, with nothing in between.
 *
 * TLS 1.3 only; the certificate and key come from --tls-cert/--tls-key (PEM). read_ahead is on,
 * so one recv() usually brings in every record that is there (without it OpenSSL reads a 5-byte
 * header and then the body: two syscalls per record).
 *
 * Echo: every plaintext byte is written back in order. What SSL_write does not take is copied
 * out (at most one read) and reading stops until it has gone. The client's close_notify: finish
 * the echoes, answer with our close_notify, then FIN, then read (and drop) to the client's FIN
 * and close. A FIN without close_notify (truncation) or a TLS error: close.
 *
 * SIGTERM: close the listener; per connection flush what is owed, close_notify, FIN, drain to
 * the client's FIN (later input is dropped, not decrypted); abort what is left after 5 s.
 *
 * --ktls sets SSL_OP_ENABLE_KTLS and says on stderr, once, whether the first connection got
 * kernel TLS for sending and receiving (docs/benchmarks.md, "kTLS").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define STOP_GRACE_MS 5000

struct conn {
    int fd;
    SSL* ssl;
    uint32_t interest;
    char* out; /* plaintext SSL_write has not taken yet: out[head, len) */
    size_t head, len;
    int handshake_done;
    int peer_notify; /* the client's close_notify arrived */
    int fin_sent;    /* our close_notify (if any) and FIN are out: drain to the client's FIN */
    struct conn *prev, *next;
};

static int ep = -1, listen_fd = -1, sig_fd = -1;
static SSL_CTX* ctx;
static struct conn* conns;
static size_t live;
static int stopping, want_ktls, ktls_reported;
static long long accept_resume_at;
static char rbuf[READ_SIZE];
static char listener_tag, signal_tag;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_interest(struct conn* c, uint32_t ev) {
    if (c->interest == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl mod");
    c->interest = ev;
}

static void conn_close(struct conn* c, int abortive) {
    if (abortive) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    SSL_free(c->ssl);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out);
    free(c);
    live--;
}

/* What an SSL call that returned `r` <= 0 wants: EPOLLIN/EPOLLOUT, or 0 for "dead". */
static uint32_t wants(struct conn* c, int r) {
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) return EPOLLIN;
    if (e == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
    ERR_clear_error();
    return 0;
}

/* Writes plaintext; keeps what SSL_write did not take. 0 on success (maybe with output owed),
 * -1 if the connection died, or the interest to wait for when it is blocked. */
static int write_some(struct conn* c, const char* p, size_t n, uint32_t* blocked) {
    const int from_out = p == c->out + c->head && c->out != NULL;
    *blocked = 0;
    while (n > 0) {
        int k = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
        if (k <= 0) {
            *blocked = wants(c, k);
            if (!*blocked) return -1;
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    if (n > 0 && !from_out) {
        /* Reading is paused while anything is owed, so this never holds more than one read.
         * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the retry come from this copy. */
        char* copy = malloc(n);
        if (!copy) die("malloc");
        memcpy(copy, p, n);
        free(c->out);
        c->out = copy;
        c->head = 0;
        c->len = n;
    } else if (n > 0) {
        c->head = c->len - n;
    } else {
        free(c->out);
        c->out = NULL;
        c->head = c->len = 0;
    }
    return 0;
}

static void report_ktls(struct conn* c) {
    if (!want_ktls || ktls_reported) return;
    ktls_reported = 1;
    fprintf(stderr, "ktls: send %s, receive %s\n",
            BIO_get_ktls_send(SSL_get_wbio(c->ssl)) ? "on" : "off",
            BIO_get_ktls_recv(SSL_get_rbio(c->ssl)) ? "on" : "off");
}

/* Moves the connection as far as it can go, then sets what to wait for. */
static void progress(struct conn* c) {
    if (!c->handshake_done && !stopping) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            uint32_t w = wants(c, r);
            if (!w) return conn_close(c, 0);
            return set_interest(c, w);
        }
        c->handshake_done = 1;
        report_ktls(c);
    }
    if (!c->fin_sent && c->len > c->head) {
        uint32_t w;
        if (write_some(c, c->out + c->head, c->len - c->head, &w) < 0) return conn_close(c, 0);
        if (w) return set_interest(c, w);
    }
    while (!c->fin_sent && !c->peer_notify && !stopping) {
        int n = SSL_read(c->ssl, rbuf, sizeof rbuf);
        if (n <= 0) {
            if (SSL_get_error(c->ssl, n) == SSL_ERROR_ZERO_RETURN) {
                c->peer_notify = 1;
                break;
            }
            uint32_t w = wants(c, n); /* 0: a TLS error, or a FIN without close_notify */
            if (!w) return conn_close(c, 0);
            return set_interest(c, w);
        }
        uint32_t w;
        if (write_some(c, rbuf, (size_t)n, &w) < 0) return conn_close(c, 0);
        if (w) return set_interest(c, w);
    }
    if (!c->fin_sent) {
        if (c->handshake_done) {
            int r = SSL_shutdown(c->ssl); /* 0 or 1: our close_notify is out */
            if (r < 0) {
                uint32_t w = wants(c, r);
                if (!w) return conn_close(c, 0);
                return set_interest(c, w);
            }
        }
        shutdown(c->fd, SHUT_WR);
        c->fin_sent = 1;
    }
    /* Draining: the client owes nothing but its FIN; anything else is dropped unread. */
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return set_interest(c, EPOLLIN);
        return conn_close(c, 0); /* the FIN (or an error): nothing unread is left */
    }
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            perror("accept4"); /* EMFILE and friends: pause accepting for 100 ms */
            epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
            accept_resume_at = now_ms() + 100;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn* c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->ssl = SSL_new(ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) die("SSL_new");
        c->interest = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl add");
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        live++;
    }
}

static void begin_stop(void) {
    stopping = 1;
    epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
    close(listen_fd);
    listen_fd = -1;
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        progress(c);
    }
}

static SSL_CTX* make_ctx(const char* cert, const char* key) {
    SSL_CTX* x = SSL_CTX_new(TLS_server_method());
    if (!x) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(x, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(x, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(x) != 1) {
        fprintf(stderr, "cannot use --tls-cert %s / --tls-key %s:\n", cert, key);
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(x, 1);
    if (want_ktls) SSL_CTX_set_options(x, SSL_OP_ENABLE_KTLS);
    return x;
}

int main(int argc, char** argv) {
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--ktls") == 0)
            want_ktls = 1;
        else
            cert = key = NULL, i = argc;
    }
    if (!cert || !key) {
        fprintf(stderr,
                "usage: %s --tls-cert CERT.pem --tls-key KEY.pem [--host H] [--port N] "
                "[--ktls]\n",
                argv[0]);
        return 2;
    }
    ctx = make_ctx(cert, key);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }
    if (bind(listen_fd, (struct sockaddr*)&sa, sizeof sa) < 0) die("bind");
    if (listen(listen_fd, INT_MAX) < 0) die("listen");
    socklen_t sl = sizeof sa;
    getsockname(listen_fd, (struct sockaddr*)&sa, &sl);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN); /* OpenSSL's socket BIO uses write(), not send(MSG_NOSIGNAL) */
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) die("signalfd");
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &listener_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &e) < 0) die("epoll_ctl listener");
    e.data.ptr = &signal_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &e) < 0) die("epoll_ctl signalfd");

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    long long stop_deadline = 0;
    while (!stopping || live > 0) {
        int timeout = -1;
        if (stopping) {
            long long left = stop_deadline - now_ms();
            if (left <= 0) {
                fprintf(stderr, "stop deadline: aborting %zu connections\n", live);
                while (conns)
                    conn_close(conns, 1);
                break;
            }
            timeout = (int)left;
        } else if (accept_resume_at) {
            long long left = accept_resume_at - now_ms();
            if (left <= 0) {
                struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listener_tag};
                epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &le);
                accept_resume_at = 0;
            } else {
                timeout = (int)left;
            }
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void* p = evs[i].data.ptr;
            if (p == &listener_tag) {
                if (!stopping) on_accept();
            } else if (p == &signal_tag) {
                struct signalfd_siginfo si;
                while (read(sig_fd, &si, sizeof si) == sizeof si) {
                }
                if (!stopping) {
                    stop_deadline = now_ms() + STOP_GRACE_MS;
                    begin_stop();
                    break; /* the batch may name connections begin_stop() closed */
                }
            } else if (evs[i].events & EPOLLERR) {
                conn_close(p, 0);
            } else {
                progress(p);
            }
        }
    }
    close(ep);
    close(sig_fd);
    SSL_CTX_free(ctx);
    return 0;
}
