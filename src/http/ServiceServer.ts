/**
 * The Node HTTP server of the service: what it answers before, around and after the API.
 *
 * Phases its users see:
 * - starting: the listener comes up before the database and the cluster, and a request (a
 *   load balancer's probe) gets 503 + Retry-After instead of hanging;
 * - serving: requests go to the API's handler, which attaches itself with `on("request")`;
 * - draining (`drain`): requests in flight are answered and their connections closed after
 *   the answer; every new request gets 503 + Retry-After + `Connection: close` (its client
 *   goes elsewhere) until the listener closes. Nothing that arrived on an open connection is
 *   reset.
 *
 * Bounds no client can lift, checked before the API sees a request:
 * - one request at a time per connection: pipelined requests wait their turn (at most
 *   `maxQueuedPerConnection`, beyond which the connection is closed), and those still waiting
 *   when their connection closes are never run;
 * - at most `maxConnections` connections: a new one beyond it takes the place of the oldest
 *   idle one, or is closed if none is idle;
 * - a `Host` that is not a host name or address (it would go into ticket links) is a 400;
 * - a body whose `Content-Type` is not JSON is a 415: a web page can send text/plain or form
 *   bodies across origins without asking, so they must not buy or create anything;
 * - a chunked body over `maxBodyBytes` is a 413 the client can read;
 * - what Node's parser refuses before there is a request (headers over its limit, bytes that
 *   are not HTTP) is answered as every error is, `{"error": ...}`, not with an empty body.
 */
import { EventEmitter } from "node:events"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import { Readable } from "node:stream"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void

const answer = (
  response: http.ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {}
) => {
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(JSON.stringify({ error: message }))
}

const unavailable = (response: http.ServerResponse, message: string, close: boolean) =>
  answer(response, 503, message, { "retry-after": "1", ...(close ? { connection: "close" } : {}) })

/** A DNS name (labels of letters, digits, `-`, `_`), an IPv4 address or a bracketed IPv6 one, and a port. */
const validHost = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

/** `application/json`, or any `+json` type, with parameters. */
const jsonType = /^\s*application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

const hasBody = (request: http.IncomingMessage) =>
  request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0" ||
  request.headers["transfer-encoding"] !== undefined

/** Four fifths of the process's open-file limit: the rest is for the database, logs, workers. */
const defaultMaxConnections = (): number => {
  try {
    const limits = fs.readFileSync("/proc/self/limits", "utf8")
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1])
    if (Number.isFinite(soft) && soft > 0) return Math.max(64, Math.floor(soft * 0.8))
  } catch {
    // Not Linux: fall through.
  }
  return 8000
}

export interface ServiceServerOptions extends http.ServerOptions {
  readonly maxConnections?: number | undefined
  readonly maxQueuedPerConnection?: number | undefined
  /** Chunked bodies (without `Content-Length`) larger than this get a 413 (see `chunked`). */
  readonly maxBodyBytes?: number | undefined
}

interface Connection {
  readonly socket: net.Socket
  /** Whether a request of this connection is being answered now. */
  busy: boolean
  readonly waiting: Array<readonly [http.IncomingMessage, http.ServerResponse]>
}

export class ServiceServer extends http.Server {
  private handler: RequestListener | undefined = undefined
  private draining = false
  private readonly inFlight = new Set<http.ServerResponse>()
  private readonly whenIdle: Array<() => void> = []
  private lastRequestAt = 0
  private lastConnectionAt = 0
  /** Open connections, oldest first. */
  private readonly tracked = new Map<net.Socket, Connection>()
  private readonly connectionLimit: number
  private readonly queueLimit: number
  private readonly bodyLimit: number

  constructor(options: ServiceServerOptions = {}) {
    const { maxBodyBytes, maxConnections, maxQueuedPerConnection, ...httpOptions } = options
    super(httpOptions)
    this.bodyLimit = maxBodyBytes ?? 64 * 1024
    this.connectionLimit = maxConnections ?? defaultMaxConnections()
    this.queueLimit = maxQueuedPerConnection ?? 32
    EventEmitter.prototype.on.call(
      this,
      "request",
      (request: http.IncomingMessage, response: http.ServerResponse) => this.arrive(request, response)
    )
    EventEmitter.prototype.on.call(this, "connection", (socket: net.Socket) => this.connect(socket))
    EventEmitter.prototype.on.call(this, "clientError", (error: NodeJS.ErrnoException, socket: net.Socket) =>
      this.clientError(error, socket))
  }

  /**
   * Node's parser refused what arrived: there is no request to answer, only the socket. Answered
   * as Node would (431 for headers over its limit, 408 for a request too slow to arrive, else
   * 400), with a JSON body saying why, and the connection closed once it is written. Not while
   * an earlier request of the connection is being answered: its answer comes first on the wire,
   * so this one is not written at all (the connection is closed; the client sees it reset).
   */
  private clientError(error: NodeJS.ErrnoException, socket: net.Socket) {
    const answering = (socket as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage
    if (error.code === "ECONNRESET" || !socket.writable || answering != null) return socket.destroy()
    const [status, message] = error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "request headers are larger than the server accepts"] as const
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "the request took too long to arrive"] as const
      : [400, "the request is not valid HTTP"] as const
    const body = JSON.stringify({ error: message })
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      // Closed both ways once written: the server keeps half-open sockets otherwise.
      () => socket.destroy()
    )
  }

  private connect(socket: net.Socket) {
    this.lastConnectionAt = Date.now()
    if (this.tracked.size >= this.connectionLimit) {
      let idle: Connection | undefined
      for (const connection of this.tracked.values()) {
        if (!connection.busy) {
          idle = connection
          break
        }
      }
      if (idle === undefined) return socket.destroy()
      idle.socket.destroy()
      this.tracked.delete(idle.socket)
    }
    this.tracked.set(socket, { socket, busy: false, waiting: [] })
    socket.once("close", () => {
      const connection = this.tracked.get(socket)
      // Pipelined requests not started yet are dropped with their connection: nobody reads them.
      if (connection !== undefined) connection.waiting.length = 0
      this.tracked.delete(socket)
    })
  }

  private arrive(request: http.IncomingMessage, response: http.ServerResponse) {
    this.lastRequestAt = Date.now()
    const connection = this.tracked.get(request.socket)
    if (connection === undefined) return this.run(undefined, request, response)
    if (!connection.busy) return this.run(connection, request, response)
    if (connection.waiting.length >= this.queueLimit) return request.socket.destroy()
    connection.waiting.push([request, response])
  }

  private run(connection: Connection | undefined, request: http.IncomingMessage, response: http.ServerResponse) {
    if (connection !== undefined) {
      connection.busy = true
      response.once("close", () => {
        connection.busy = false
        const next = connection.waiting.shift()
        if (next !== undefined && !connection.socket.destroyed) this.run(connection, next[0], next[1])
      })
    }
    this.dispatch(request, response)
  }

  private dispatch(request: http.IncomingMessage, response: http.ServerResponse) {
    const handler = this.handler
    if (this.draining) {
      // Read the body first: closing a connection with unread bytes in it resets it, and the
      // client could lose this answer.
      request.resume()
      request.once("end", () => unavailable(response, "the service is shutting down; retry", true))
      return
    }
    if (handler === undefined) return unavailable(response, "the service is starting", false)
    const host = request.headers.host
    if (host === undefined) {
      // HTTP/1.0 may leave the Host out: links then name the address and port it arrived on.
      const { localAddress, localPort } = request.socket
      if (localAddress !== undefined && localPort !== undefined) {
        // An IPv4 client of a server listening on `::` arrives on `::ffff:a.b.c.d`; a link-local
        // IPv6 address carries its zone (`%eth0`), which no URL may hold.
        const address = localAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "").replace(/%.*$/, "")
        request.headers.host = `${address.includes(":") ? `[${address}]` : address}:${localPort}`
      }
    } else if (!validHost.test(host)) return answer(response, 400, "the Host header is not a host name")
    const type = request.headers["content-type"]
    if (type !== undefined && !jsonType.test(type) && hasBody(request)) {
      return answer(response, 415, "request bodies must be JSON, sent with Content-Type: application/json")
    }
    this.inFlight.add(response)
    response.once("close", () => {
      this.inFlight.delete(response)
      if (this.inFlight.size === 0) this.whenIdle.splice(0).forEach((resolve) => resolve())
    })
    if (request.headers["content-length"] === undefined && request.headers["transfer-encoding"] !== undefined) {
      return this.chunked(request, response, handler)
    }
    handler(request, response)
  }

  /**
   * A body sent in chunks, without `Content-Length`: its size is known only at its end. Read
   * it here, to the end, and answer 413 if it is too large (the API's reader would stop at the
   * limit and close the connection with bytes still arriving, which resets it before the
   * client reads the 413); otherwise hand the API the same request with its body read. A body
   * far beyond the limit is not read to its end: its connection is closed.
   */
  private chunked(request: http.IncomingMessage, response: http.ServerResponse, handler: RequestListener) {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= this.bodyLimit) chunks.push(chunk)
      else if (size > this.bodyLimit * 16) request.socket.destroy()
    })
    request.once("end", () => {
      if (size > this.bodyLimit) {
        return answer(response, 413, `request body is larger than ${this.bodyLimit} bytes`)
      }
      const body = Buffer.concat(chunks)
      const { "transfer-encoding": _chunked, ...headers } = request.headers
      const replay = Object.assign(Readable.from([body]), {
        headers: { ...headers, "content-length": String(body.length) },
        method: request.method,
        url: request.url,
        socket: request.socket
      })
      handler(replay as unknown as http.IncomingMessage, response)
    })
  }

  override on(event: string | symbol, listener: (...args: Array<any>) => void): this {
    if (event !== "request") return EventEmitter.prototype.on.call(this, event, listener) as this
    this.handler = listener as RequestListener
    return this
  }

  override addListener(event: string | symbol, listener: (...args: Array<any>) => void): this {
    return this.on(event, listener)
  }

  override off(event: string | symbol, listener: (...args: Array<any>) => void): this {
    if (event !== "request") return EventEmitter.prototype.off.call(this, event, listener) as this
    if (this.handler === listener) this.handler = undefined
    return this
  }

  override removeListener(event: string | symbol, listener: (...args: Array<any>) => void): this {
    return this.off(event, listener)
  }

  /** Requests being answered by the API now. */
  get requestsInFlight(): number {
    return this.inFlight.size
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.tracked.size
  }

  /**
   * Stops taking new work and waits, at most `timeoutMillis`, for the requests in flight to be
   * answered; resolves with how many were still unanswered. Requests in flight are answered by
   * the API, with `Connection: close`; every new request gets 503, `Retry-After` and
   * `Connection: close`, so its client goes elsewhere. The listener closes last, once a moment
   * has passed without a new connection or request (a connection waiting to be accepted when a
   * listener closes is reset, with its request), then the idle connections are closed.
   */
  async drain(timeoutMillis: number): Promise<number> {
    this.draining = true
    for (const response of this.inFlight) {
      if (!response.headersSent) response.setHeader("connection", "close")
    }
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMillis)
        this.whenIdle.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    const unanswered = this.inFlight.size
    const quiet = () => Date.now() - Math.max(this.lastRequestAt, this.lastConnectionAt) >= 250
    for (let waited = 0; waited < 2000 && !quiet(); waited += 25) await sleep(25)
    if (this.listening) net.Server.prototype.close.call(this)
    this.closeIdleConnections()
    this.closeAllConnections()
    return unanswered
  }
}
