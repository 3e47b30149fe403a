/*
 * api_message.c - one message: the Message object, headers, raw source, parts, /view/{ID}.html|.txt
 * and the envelope.
 */
#include "mailsink/http/internal.h"

void
api_message(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_message_headers(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_message_raw(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_message_part(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_message_envelope(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_view_html(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_view_text(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}
