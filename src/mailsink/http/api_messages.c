/*
 * api_messages.c - list, search, delete, mark read and tags (Mailpit's /api/v1/messages, /search,
 * /tags).
 */
#include "mailsink/http/internal.h"

void
api_messages_list(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_messages_read(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_messages_delete(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_search(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_search_delete(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_tags_list(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}

void
api_tags_set(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}
