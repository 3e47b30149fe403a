/*
 * smtpd.h - libsmtpd, an embeddable SMTP server library.
 *
 * This header is the whole public API and its manual. The model is tcllib's smtpd:
 * create a server, configure it, listen, start, and let hooks validate the client host,
 * the sender and each recipient, then deliver the message.
 *
 * Threads: a server runs its sessions on one libevent event_base (its own thread with
 * smtpd_server_start, the caller's thread with smtpd_server_run, or the caller's base
 * with smtpd_server_attach). Hooks run on that thread and must not block: slow work
 * returns SMTPD_PENDING and finishes later with smtpd_server_complete(), which any
 * thread may call. Configuration calls are made before the server starts. Many servers
 * may live in one process; they share nothing.
 *
 * Errors: functions returning int return 0 on success and a negative SMTPD_E* code
 * otherwise; smtpd_strerror() names the code and smtpd_server_errmsg() says more.
 *
 * The header compiles as C99, C11 and C++.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(SMTPD_BUILDING)
#define SMTPD_API __attribute__((visibility("default")))
#else
#define SMTPD_API
#endif

#define SMTPD_VERSION_MAJOR 0
#define SMTPD_VERSION_MINOR 1
#define SMTPD_VERSION_PATCH 0
#define SMTPD_VERSION_STRING "0.1.0"

/* Error codes. Never renumbered. */
#define SMTPD_OK 0
#define SMTPD_EINVAL (-1) /* a bad argument or option value */
#define SMTPD_ENOMEM (-2) /* out of memory */
#define SMTPD_EADDR (-3)  /* an address that does not parse or resolve */
#define SMTPD_EBIND (-4)  /* bind or listen failed (port in use, permission) */
#define SMTPD_ESTATE (-5) /* the call is not allowed in the server's current state */
#define SMTPD_ENOENT (-6) /* unknown option name, or the session is gone */
#define SMTPD_ESYS (-7)   /* a system call failed (threads, event loop) */
#define SMTPD_ERANGE (-8) /* a value out of range, or an output buffer too small */

/* Return a static, constant name for an error code. Never NULL. */
SMTPD_API const char *smtpd_strerror(int err);

/* ------------------------------------------------------------------------------------ */
/* Options                                                                               */
/* ------------------------------------------------------------------------------------ */

/* What to do with a bare CR or bare LF inside DATA (not part of CRLF). */
typedef enum smtpd_bare_lf {
    SMTPD_BARE_LF_REJECT = 0, /* default: the message is refused with 550 5.5.2 at CRLF.CRLF */
    SMTPD_BARE_LF_NORMALIZE,  /* the bare CR or LF is stored as CRLF (recorded as a finding) */
    SMTPD_BARE_LF_ACCEPT      /* stored as received (recorded as a finding) */
} smtpd_bare_lf;

/*
 * Server options. Fill with smtpd_options_init(), then change what you need. Every
 * limit has a finite default; none means "unlimited". Names in brackets are the names
 * smtpd_server_configure() and smtpd_server_cget() take.
 */
typedef struct smtpd_options {
    const char *hostname;        /* [hostname] our name in the greeting, EHLO and Received;
                                    NULL = gethostname(). Copied by smtpd_server_new. */
    const char *banner;          /* [banner] greeting text after the hostname; NULL = "ESMTP" */
    size_t max_message_size;     /* [max-message-size] octets, advertised in SIZE; 10240000;
                                    at least 1024 */
    unsigned max_recipients;     /* [max-recipients] per message; 100 (RFC 5321 4.5.3.1.8) */
    unsigned max_command_line;   /* [max-command-line] octets incl. CRLF; 512 (4.5.3.1.4);
                                    512..4000. MAIL and RCPT get 64 more for the
                                    parameters extensions add (RFC 1870 4, RFC 6531 3.4) */
    unsigned max_text_line;      /* [max-text-line] octets incl. CRLF; 1000 (4.5.3.1.6).
                                    Longer lines are a finding; lines over 8 times this
                                    make the message fail with "552 5.3.4 Message
                                    refused: line too long" at end of data. */
    unsigned command_timeout_ms; /* [command-timeout] a deadline for each whole command
                                    line, from the moment we wait for it (not restarted
                                    by each octet); then 421 4.4.2; 300000 */
    unsigned data_timeout_ms;    /* [data-timeout] the deadline for message content; it
                                    moves on only while content comes at 500 octets/s
                                    or more (never past this much from now); 180000.
                                    A client whose replies wait unread this long is
                                    dropped without a reply. */
    unsigned max_errors;         /* [max-errors] the Nth bad command is answered, then
                                    421 and close; 20 */
    unsigned max_junk;           /* [max-junk] the same for NOOP/RSET/VRFY/EXPN/HELP and
                                    repeated HELO/EHLO; 100 */
    unsigned max_sessions;       /* [max-sessions] open sessions, more get 421; 1000 */
    size_t max_pending_input;    /* [max-pending-input] octets of pipelined input held while
                                    a hook is pending, or while the client does not read
                                    its replies; 262144; at least 4096 */
    smtpd_bare_lf bare_lf;       /* [bare-lf] reject | normalize | accept; reject */
    int enhanced_status_codes;   /* [enhanced-status-codes] 0/1; 1 (RFC 2034) */
    int smtputf8;                /* [smtputf8] offer SMTPUTF8; 1 (RFC 6531) */
    int pipelining;              /* [pipelining] offer PIPELINING; 1 (RFC 2920) */
    int vrfy;                    /* [vrfy] answer VRFY with 252 (1) or 502 (0); 1 */
    unsigned stop_grace_ms;      /* [stop-grace] default grace for smtpd_server_stop; 5000 */

    /* TLS (RFC 3207 STARTTLS, RFC 8314 implicit TLS) and AUTH (RFC 4954). Appended
       here so the fields above keep their places. */
    const char *tls_cert_file;   /* [tls-cert] PEM certificate (chain allowed); with
                                    tls_key_file, STARTTLS is offered. NULL = no TLS
                                    unless smtpd_server_set_ssl_ctx is called. Copied. */
    const char *tls_key_file;    /* [tls-key] PEM private key. Copied. */
    unsigned tls_timeout_ms;     /* [tls-timeout] to finish a TLS handshake; 30000 */
    int require_tls;             /* [require-tls] MAIL before STARTTLS gets
                                    "530 5.7.0 Must issue a STARTTLS command first"; 0 */
    int allow_insecure_auth;     /* [allow-insecure-auth] offer and accept AUTH without
                                    TLS (else 538 5.7.11); 0 */
    int auth_required;           /* [auth-required] MAIL without AUTH gets
                                    "530 5.7.0 Authentication required"; 0 */
    const char *auth_mechanisms; /* [auth-mechanisms] space-separated, from PLAIN LOGIN
                                    CRAM-MD5; NULL = all three. AUTH is offered only
                                    when an on_auth hook is set. Copied. */

    /* Resource limits against many clients at once. Appended here as well. */
    unsigned max_sessions_per_ip; /* [max-sessions-per-ip] open sessions from one client
                                     address; more get "421 4.7.0 <hostname> Error:
                                     too many connections from ADDR"; 1000 */
    size_t max_buffered_data;     /* [max-buffered-data] octets of message content that
                                     all sessions together hold in memory until
                                     its delivery is answered; a message that would
                                     pass it fails with "452 4.3.1 Insufficient system
                                     storage" at end of data (the rest is read and
                                     dropped); MAIL with a SIZE larger than what is free
                                     and DATA while less than 64 KiB (or, for a smaller
                                     budget, all of it) is free get that 452 at once.
                                     Never less than max-message-size + 8 KiB, so one
                                     message of the largest size always fits alone.
                                     268435456 */
} smtpd_options;

/* Fill *opts with the defaults above. */
SMTPD_API void smtpd_options_init(smtpd_options *opts);

/* ------------------------------------------------------------------------------------ */
/* Sessions, messages and hooks                                                          */
/* ------------------------------------------------------------------------------------ */

typedef struct smtpd_server smtpd_server;
typedef struct smtpd_session smtpd_session;

/* What a hook answers. The reply actually sent decides the protocol state. */
typedef enum smtpd_verdict {
    SMTPD_ACCEPT = 0, /* go on with the default positive reply */
    SMTPD_REJECT,     /* permanent failure: the hook's reply, or the seed's 5xx */
    SMTPD_TEMPFAIL,   /* temporary failure: the hook's reply, or 451 4.3.0 */
    SMTPD_DISCONNECT, /* 421 (or the hook's 421 reply) and close the session */
    SMTPD_PENDING     /* the answer comes later through smtpd_server_complete() */
} smtpd_verdict;

/*
 * Findings: what the client did that the RFCs do not allow or advise against. The
 * session notes them instead of silently fixing them; the deliver hook gets them.
 */
typedef enum smtpd_finding {
    SMTPD_FINDING_BARE_LF = 1u << 0,            /* LF without CR in DATA */
    SMTPD_FINDING_BARE_CR = 1u << 1,            /* CR without LF in DATA */
    SMTPD_FINDING_EARLY_TALKER = 1u << 2,       /* sent before our greeting */
    SMTPD_FINDING_BAD_PIPELINING = 1u << 3,     /* commands after one that must end a group,
                                                   or pipelining without the extension */
    SMTPD_FINDING_LONG_LINE = 1u << 4,          /* a DATA line over max-text-line octets */
    SMTPD_FINDING_8BIT_UNDECLARED = 1u << 5,    /* 8-bit data without BODY=8BITMIME */
    SMTPD_FINDING_NO_DATE = 1u << 6,            /* no Date: header (RFC 5322 3.6) */
    SMTPD_FINDING_NO_MESSAGE_ID = 1u << 7,      /* no Message-ID: header (RFC 5322 3.6.4) */
    SMTPD_FINDING_HELO_NOT_DOMAIN = 1u << 8,    /* HELO/EHLO argument neither domain nor literal */
    SMTPD_FINDING_SPACE_IN_PATH = 1u << 9,      /* space around the colon of MAIL FROM:/RCPT TO: */
    SMTPD_FINDING_NO_ANGLE_BRACKETS = 1u << 10, /* a path without < > */
    SMTPD_FINDING_HELO_NOT_EHLO = 1u << 11,     /* used HELO (no extensions) */
    SMTPD_FINDING_NO_QUIT = 1u << 12 /* closed the connection without QUIT (session only) */
} smtpd_finding;

/* The static name of one finding bit ("bare-lf", ...), or NULL for an unknown bit. */
SMTPD_API const char *smtpd_finding_name(unsigned finding);

/*
 * A message handed to on_deliver. Every pointer is valid only during the on_deliver
 * call; copy what you keep (a PENDING deliver must copy before it returns).
 */
typedef struct smtpd_message {
    const char *id;           /* our id, also in the 250 reply and the Received header */
    const char *sender;       /* reverse-path without < >; "" for the null sender */
    const char *const *rcpts; /* forward-paths without < >, in RCPT order */
    size_t rcpt_count;
    const char *data;  /* trace headers we added, then the message exactly as
                          received after dot-unstuffing (and bare CR/LF handling) */
    size_t size;       /* octets in data */
    size_t trace_size; /* octets of data that are our Return-Path + Received */
    unsigned findings; /* smtpd_finding bits, for the session and this message */
    int body_8bitmime; /* the client declared BODY=8BITMIME */
    int smtputf8;      /* the client declared SMTPUTF8 */
} smtpd_message;

/*
 * What a client presented with AUTH, given to on_auth. Valid during the hook only.
 * Passwords never appear in transcripts: on_log sees "***" in their place.
 */
typedef struct smtpd_auth {
    const char *mechanism; /* "PLAIN", "LOGIN" or "CRAM-MD5" */
    const char *authzid;   /* PLAIN's authorization identity ("" when none) */
    const char *user;      /* the authentication identity */
    const char *password;  /* PLAIN and LOGIN; NULL for CRAM-MD5 (use
                              smtpd_auth_check_password with the stored password) */
} smtpd_auth;

/*
 * 1 if the client proved it knows password: for PLAIN and LOGIN a constant-time
 * comparison, for CRAM-MD5 the HMAC-MD5 of our challenge (RFC 2195) compared in constant
 * time. 0 otherwise. Only during on_auth.
 */
SMTPD_API int smtpd_auth_check_password(smtpd_session *s, const smtpd_auth *auth,
                                        const char *password);

/* Direction of a transcript line given to on_log. */
typedef enum smtpd_log_dir {
    SMTPD_LOG_IN = 0, /* a command line from the client (DATA content is never logged) */
    SMTPD_LOG_OUT,    /* a reply line we sent */
    SMTPD_LOG_INFO    /* a note of the library: connect, close, errors */
} smtpd_log_dir;

/*
 * Hooks. Each may be NULL (then the default answer is ACCEPT). Hooks are called on the
 * session's I/O thread. The strings they get are valid only during the call.
 *
 * Before returning REJECT, TEMPFAIL or DISCONNECT, a hook may set its own reply with
 * smtpd_session_set_reply(); otherwise the seed's replies are used:
 *   on_connect REJECT  -> "550 Access denied: <text>" (the hook's code and text, if it set
 *                         them, still in this form); afterwards only QUIT is allowed
 *   on_mail REJECT     -> "553 5.7.1 Requested action not taken: mailbox name not allowed"
 *   on_rcpt REJECT     -> the same 553 (postmaster, bare or at our hostname, never asks)
 *   TEMPFAIL           -> "451 4.3.0 Requested action aborted: local error in processing"
 * A hook returning PENDING must first take a ticket with smtpd_session_ticket() and later
 * pass it to smtpd_server_complete(). Until then the session reads no further command;
 * pipelined input waits (at most max-pending-input octets) and replies keep their order.
 */
typedef struct smtpd_hooks {
    smtpd_verdict (*on_connect)(smtpd_session *s, void *user);
    smtpd_verdict (*on_helo)(smtpd_session *s, const char *name, void *user);
    smtpd_verdict (*on_mail)(smtpd_session *s, const char *sender, void *user);
    smtpd_verdict (*on_rcpt)(smtpd_session *s, const char *rcpt, void *user);
    smtpd_verdict (*on_data)(smtpd_session *s, void *user); /* before the 354 */
    /* The message content as it arrives, in pieces, after unstuffing; no trace headers.
       REJECT or TEMPFAIL here fails the message at the final dot. PENDING is not allowed
       here (treated as TEMPFAIL). */
    smtpd_verdict (*on_data_chunk)(smtpd_session *s, const char *data, size_t len, void *user);
    smtpd_verdict (*on_deliver)(smtpd_session *s, const smtpd_message *msg, void *user);
    void (*on_reset)(smtpd_session *s, void *user); /* the transaction was dropped */
    void (*on_close)(smtpd_session *s, void *user); /* last call for this session */
    void (*on_log)(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len, void *user);
    /* AUTH (RFC 4954): ACCEPT -> "235 2.7.0 Authentication successful"; REJECT ->
       "535 5.7.8 Authentication credentials invalid" (counted toward max-errors, so
       password guessing ends in 421); PENDING allowed. Without this hook AUTH is not
       offered. */
    smtpd_verdict (*on_auth)(smtpd_session *s, const smtpd_auth *auth, void *user);
    /* The TLS handshake finished (STARTTLS or implicit TLS); the TLS facts and the
       client certificate's subject can be read now. REJECT or DISCONNECT close the
       session with 421. With implicit TLS it runs before on_connect. */
    smtpd_verdict (*on_tls)(smtpd_session *s, void *user);
} smtpd_hooks;

/*
 * Set the reply for the current hook's answer. code: 200..599; enhanced: "x.y.z" or
 * NULL (then a fitting one is chosen when enhanced status codes are on); text: may hold
 * several lines separated by '\n' (sent as a multi-line reply); CR and NUL are replaced.
 * Only during a hook call. Returns SMTPD_EINVAL for a bad code or enhanced code.
 */
SMTPD_API int smtpd_session_set_reply(smtpd_session *s, int code, const char *enhanced,
                                      const char *text);

/* A ticket names one pending hook answer of one session. */
typedef struct smtpd_ticket {
    uint64_t session_id;
    uint64_t seq;
} smtpd_ticket;

/* Take the ticket for the hook now running; call it before returning SMTPD_PENDING. */
SMTPD_API smtpd_ticket smtpd_session_ticket(smtpd_session *s);

/*
 * Complete a pending hook. Any thread may call it, once per ticket. verdict: ACCEPT,
 * REJECT, TEMPFAIL or DISCONNECT; code/enhanced/text as in smtpd_session_set_reply
 * (code 0 = the default reply for the verdict). Returns 0, or SMTPD_ENOENT when the
 * session is already gone (the answer is dropped), SMTPD_EINVAL for a bad verdict/reply.
 * Out of memory the answer still goes, without its text (the default text for the
 * code); SMTPD_ENOMEM only when even the server's fixed reserve of such answers is full.
 */
SMTPD_API int smtpd_server_complete(smtpd_server *srv, smtpd_ticket ticket, smtpd_verdict verdict,
                                    int code, const char *enhanced, const char *text);

/* Session facts, for hooks. Strings are valid until the session's on_close returns,
   except the envelope ones, valid until the transaction is reset. */
SMTPD_API uint64_t smtpd_session_id(const smtpd_session *s);
SMTPD_API smtpd_server *smtpd_session_server(const smtpd_session *s);
SMTPD_API const char *smtpd_session_client_addr(const smtpd_session *s); /* "127.0.0.1" */
SMTPD_API int smtpd_session_client_port(const smtpd_session *s);
SMTPD_API const char *smtpd_session_helo(const smtpd_session *s);   /* NULL before HELO */
SMTPD_API int smtpd_session_is_esmtp(const smtpd_session *s);       /* EHLO was used */
SMTPD_API const char *smtpd_session_sender(const smtpd_session *s); /* NULL outside a tx */
SMTPD_API size_t smtpd_session_rcpt_count(const smtpd_session *s);
SMTPD_API const char *smtpd_session_rcpt(const smtpd_session *s, size_t i);
SMTPD_API unsigned smtpd_session_findings(const smtpd_session *s);
SMTPD_API int smtpd_session_is_tls(const smtpd_session *s);
SMTPD_API const char *smtpd_session_tls_version(const smtpd_session *s); /* "TLSv1.3" */
SMTPD_API const char *smtpd_session_tls_cipher(const smtpd_session *s);
/* The client certificate's subject (one line, RFC 2253), or NULL when none was sent. */
SMTPD_API const char *smtpd_session_tls_peer(const smtpd_session *s);
/* The authenticated user, or NULL before a successful AUTH (and after STARTTLS). */
SMTPD_API const char *smtpd_session_auth_user(const smtpd_session *s);
/* Per-session pointer for the application; the library never touches it. */
SMTPD_API void smtpd_session_set_user(smtpd_session *s, void *data);
SMTPD_API void *smtpd_session_get_user(const smtpd_session *s);

/* ------------------------------------------------------------------------------------ */
/* Servers                                                                               */
/* ------------------------------------------------------------------------------------ */

/*
 * Create a server. opts may be NULL (defaults); it and hooks are copied. user is passed
 * to every hook. Returns NULL when out of memory or when opts are invalid.
 * The first call in a process turns on libevent's pthreads locking and, if SIGPIPE still
 * has its default action, ignores SIGPIPE (a client closing while we write is an error
 * to handle, not a reason for the process to die).
 */
SMTPD_API smtpd_server *smtpd_server_new(const smtpd_options *opts, const smtpd_hooks *hooks,
                                         void *user);

/* Stop (without grace) if running and free everything. NULL does nothing. */
SMTPD_API void smtpd_server_free(smtpd_server *srv);

/*
 * Set an option by its name (see smtpd_options), from a string: numbers in decimal,
 * booleans as 0/1/yes/no/true/false/on/off, bare-lf as reject/normalize/accept.
 * Before the server starts. Returns SMTPD_ENOENT for an unknown name, SMTPD_EINVAL for
 * a bad value, SMTPD_ESTATE once running.
 */
SMTPD_API int smtpd_server_configure(smtpd_server *srv, const char *name, const char *value);

/* Write an option's value as a string into buf (NUL-terminated). SMTPD_ERANGE when it
   does not fit, SMTPD_ENOENT for an unknown name. */
SMTPD_API int smtpd_server_cget(smtpd_server *srv, const char *name, char *buf, size_t size);

/* The last error message of this server (never NULL; valid until the next call on srv). */
SMTPD_API const char *smtpd_server_errmsg(const smtpd_server *srv);

/*
 * Bind and listen on addr ("127.0.0.1", "::1", "0.0.0.0", "::"; NULL = "127.0.0.1")
 * and port ("1025"; "0" = a free port). Call as often as needed, before starting.
 */
SMTPD_API int smtpd_server_listen(smtpd_server *srv, const char *addr, const char *port);

/*
 * Listen for implicit TLS (RFC 8314, "submissions", usually port 465; 1465 in examples):
 * the handshake comes first, then the greeting. Needs a certificate (tls-cert/tls-key
 * or smtpd_server_set_ssl_ctx) by the time the server starts.
 */
SMTPD_API int smtpd_server_listen_tls(smtpd_server *srv, const char *addr, const char *port);

struct ssl_ctx_st;
/* Use the embedder's OpenSSL SSL_CTX (a reference is taken) instead of tls-cert/tls-key.
   Before starting. */
SMTPD_API int smtpd_server_set_ssl_ctx(smtpd_server *srv, struct ssl_ctx_st *ctx);

/* The port of the index-th listener (in smtpd_server_listen/_tls order), or -1. */
SMTPD_API int smtpd_server_bound_port(const smtpd_server *srv, size_t index);

/* Start serving in a new thread; returns once every listener accepts connections. */
SMTPD_API int smtpd_server_start(smtpd_server *srv);

/* Serve in the caller's thread; returns after smtpd_server_stop (from another thread or
   a hook) has finished. */
SMTPD_API int smtpd_server_run(smtpd_server *srv);

struct event_base;
/*
 * Serve on the caller's libevent event_base (libevent 2.1, with evthread_use_pthreads()
 * called if other threads will call smtpd_server_complete or smtpd_server_stop). The
 * caller runs the loop. Call smtpd_server_stop, then let the loop run until
 * smtpd_server_is_stopped(), then smtpd_server_free.
 */
SMTPD_API int smtpd_server_attach(smtpd_server *srv, struct event_base *base);

/*
 * Stop: close the listeners at once, let open sessions finish for grace_ms (-1 = the
 * stop-grace option), then answer 421 4.3.2 to those still open and close them. From
 * any thread except a hook when wait is requested. With smtpd_server_start, waits for
 * the server thread to end. Calling it twice is harmless.
 */
SMTPD_API int smtpd_server_stop(smtpd_server *srv, int grace_ms);

/* 1 once the server has stopped (all sessions closed), else 0. */
SMTPD_API int smtpd_server_is_stopped(const smtpd_server *srv);

/* Number of open sessions (any thread; a snapshot). */
SMTPD_API size_t smtpd_server_session_count(const smtpd_server *srv);

#ifdef __cplusplus
}
#endif
#endif /* SMTPD_H */
