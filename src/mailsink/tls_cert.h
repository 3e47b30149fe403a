/*
 * tls_cert.h - the certificate of --tls-self-signed, and certificate fingerprints.
 *
 * mailsink catches mail for tests, where nobody has a certificate for "localhost" at
 * hand: --tls-self-signed makes a key and a self-signed certificate for the hostname
 * once, keeps them in the data directory and reuses them on later starts (so a client
 * that pinned the fingerprint keeps working), and the fingerprint is logged so that a
 * test can pin it.
 *
 * Called by main before the server starts, from one thread. Uses OpenSSL 3 (EVP).
 */
#ifndef MAILSINK_TLS_CERT_H
#define MAILSINK_TLS_CERT_H

#include <stddef.h>

/* "AB:CD:..." for a SHA-256 digest: 32 octets, 3 characters each, the last ':' a NUL. */
#define TLS_CERT_FINGERPRINT_SIZE 96

/*
 * Find or make dir/tls-self-signed.crt and dir/tls-self-signed.key for hostname.
 *
 * The pair is reused when both files load, the key belongs to the certificate, the
 * certificate names hostname (subjectAltName, as a client checks it) and it is valid for
 * at least another day. Otherwise a new EC P-256 key and a self-signed X.509 v3
 * certificate are made: CN and subjectAltName DNS:hostname (IP:hostname for an address;
 * IP:127.0.0.1 and IP:::1 too for "localhost" or an address), valid for a year from an
 * hour ago, a random 128-bit serial, CA:FALSE, digitalSignature, serverAuth. Each file is
 * written to a temporary name, synced and renamed, the key with mode 0600. dir is made
 * (0700) when missing. A lock file in dir keeps two mailsinks starting together from
 * mixing their keys and certificates.
 *
 * On success returns 0 and sets *cert_path and *key_path (malloc'd; the caller frees)
 * and writes the certificate's SHA-256 fingerprint into fp (at least
 * TLS_CERT_FINGERPRINT_SIZE octets for all of it). On failure returns -1 with one line
 * in err ("--tls-self-signed: cannot write /x/tls-self-signed.key: Permission denied").
 */
int tls_cert_self_signed(const char *dir, const char *hostname, char **cert_path, char **key_path,
                         char *fp, size_t fpsize, char *err, size_t errsize);

/* The SHA-256 fingerprint ("AB:CD:...") of the first certificate in the PEM file
   cert_path, for the log line of --tls-cert. 0, or -1 when the file has no certificate
   or out is smaller than TLS_CERT_FINGERPRINT_SIZE. */
int tls_cert_fingerprint(const char *cert_path, char *out, size_t outsize);

#endif
