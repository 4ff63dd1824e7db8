/*
 * pbjson.h - render any protobuf-c message as one line of JSON (field names from the schema,
 * enums by name, bytes as hex), for the trace: two clients' ClientPayloads can then be compared
 * field by field. Only public data passes through here (ClientPayload holds public keys).
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#ifndef WASIM_PBJSON_H
#define WASIM_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "core/buf.h"

int sim_pb_to_json(const ProtobufCMessage *m, wa_buf *out);

#endif
