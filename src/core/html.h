/*
 * html.h: text into HTML. Every value from outside that reaches a page
 * goes through here (logins, VM names, paths), so a hostile value stays
 * text.
 */
#ifndef DD_CORE_HTML_H
#define DD_CORE_HTML_H

#include "core/buf.h"
#include "core/err.h"

/* Appends s with & < > " ' escaped: safe in text and quoted attributes. */
dd_err_t dd_html_escape(dd_buf *out, const char *s);

#endif
