// The limits a request meets before any handler runs. The server is configured with them (app.ts), and the
// answers and the OpenAPI document quote them from here.
import { maxHeaderSize } from 'node:http'

/** The largest request body read (413 payload_too_large past it). */
export const BODY_LIMIT_BYTES = 64 * 1024

/** The router's limit on one path parameter (414 uri_too_long past it). */
export const MAX_PATH_PARAMETER_LENGTH = 100

/** Node's limit on the request line and headers together, --max-http-header-size (431 past it). */
export const MAX_HEADER_BYTES = maxHeaderSize

/** A size in KiB, for messages. */
export const kib = (bytes: number) => `${bytes / 1024} KiB`
