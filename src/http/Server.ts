/**
 * The HTTP API: every group, the error mapping, the OpenAPI document at
 * `/api/v1/openapi.json` and browsable docs at `/docs`. Needs an `HttpServer`, `Sharding`
 * (to reach the concert entities) and `SqlClient`.
 */
import { type HttpApp, HttpApiBuilder, HttpApiSwagger, HttpServerRequest } from "@effect/platform"
import { Config, Effect, Layer, LogLevel } from "effect"
import { EventEmitter } from "node:events"
import * as http from "node:http"
import * as net from "node:net"
import { ConcertSales } from "../actors/ConcertSales.js"
import { Api } from "../domain/Api.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { SeatingPlansRepo } from "../sql/SeatingPlansRepo.js"
import { TicketsRepo } from "../sql/TicketsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { Renderer } from "../workers/Renderer.js"
import { SeatingPlans } from "../workers/SeatingPlans.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { ConcertsHttpLive } from "./ConcertsHttp.js"
import { ErrorResponsesLive } from "./ErrorResponses.js"
import { Health } from "./Health.js"
import { TicketsHttpLive } from "./TicketsHttp.js"
import { UserDirectory } from "./UserDirectory.js"
import { UsersHttpLive } from "./UsersHttp.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([UsersHttpLive, ConcertsHttpLive, TicketsHttpLive])
)

/** What the handlers share: lookups, repositories, and the print pipeline with its workers. */
const ServicesLive = Layer.mergeAll(PrintQueue.Default, SeatingPlans.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(PrintsRepo.Default, SeatingPlansRepo.Default, Renderer.Live)),
  Layer.provideMerge(Layer.mergeAll(
    UserDirectory.Default,
    Health.Default,
    BaseUrl.Default,
    ClosedSales.Default,
    ConcertSales.Default,
    ConcertsRepo.Default,
    TicketsRepo.Default
  ))
)

/** At `LOG_LEVEL=debug` (or finer), one line per request; otherwise nothing on the hot path. */
const requestLog = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const started = Date.now()
    return Effect.tap(app, (response) =>
      Effect.logDebug("request").pipe(
        Effect.annotateLogs({
          method: request.method,
          url: request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url,
          status: response.status,
          millis: Date.now() - started
        })
      ))
  })

const ServeLive = Layer.unwrapEffect(
  Effect.map(
    Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
    (level) => LogLevel.lessThanEqual(level, LogLevel.Debug) ? HttpApiBuilder.serve(requestLog) : HttpApiBuilder.serve()
  )
)

export const HttpLive = ServeLive.pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/api/v1/openapi.json" })),
  Layer.provide(ErrorResponsesLive),
  Layer.provide(ApiLive),
  Layer.provide(ServicesLive)
)

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void

const refuse = (response: http.ServerResponse, message: string, close: boolean) => {
  response.writeHead(503, {
    "content-type": "application/json",
    "retry-after": "1",
    ...(close ? { connection: "close" } : {})
  })
  response.end(JSON.stringify({ error: message }))
}

/**
 * The Node HTTP server of the service, with the phases its users see:
 * - starting: the listener comes up before the database and the cluster, and a request (a
 *   load balancer's probe) gets 503 + Retry-After instead of hanging;
 * - serving: requests go to the API's handler, which attaches itself with `on("request")`;
 * - draining (`drain`): requests in flight are answered and their connections closed after
 *   the answer; every new request gets 503 + Retry-After + `Connection: close` (its client
 *   goes elsewhere) until the listener closes. Nothing that arrived on an open connection is
 *   reset.
 */
export class ServiceServer extends http.Server {
  private handler: RequestListener | undefined = undefined
  private draining = false
  private readonly inFlight = new Set<http.ServerResponse>()
  private readonly whenIdle: Array<() => void> = []
  private lastRequestAt = 0
  private lastConnectionAt = 0

  constructor(options: http.ServerOptions = {}) {
    super(options)
    EventEmitter.prototype.on.call(
      this,
      "request",
      (request: http.IncomingMessage, response: http.ServerResponse) => this.dispatch(request, response)
    )
    EventEmitter.prototype.on.call(this, "connection", () => {
      this.lastConnectionAt = Date.now()
    })
  }

  private dispatch(request: http.IncomingMessage, response: http.ServerResponse) {
    const handler = this.handler
    this.lastRequestAt = Date.now()
    if (this.draining) {
      // Read the body first: closing a connection with unread bytes in it resets it, and the
      // client could lose this answer.
      request.resume()
      request.once("end", () => refuse(response, "the service is shutting down; retry", true))
      return
    }
    if (handler === undefined) return refuse(response, "the service is starting", false)
    this.inFlight.add(response)
    response.once("close", () => {
      this.inFlight.delete(response)
      if (this.inFlight.size === 0) this.whenIdle.splice(0).forEach((resolve) => resolve())
    })
    handler(request, response)
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
