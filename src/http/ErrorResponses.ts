/**
 * Every failure becomes a JSON `{"error": "..."}` response with the right status, in one
 * place: the API's own errors, bodies that do not decode, unknown routes, oversized bodies,
 * and the database going away (503, retryable). Anything else is a bug: logged, answered 500.
 */
import { HttpApiBuilder, HttpApiError, HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Option } from "effect"
import { BadRequest, NotFound, PayloadTooLarge, PurchaseRefused, Unavailable } from "../domain/Errors.js"
import { positiveInteger } from "../Settings.js"

const respond = (status: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ error: message }, { status, headers })

const unavailable = (message: string, retryAfterSeconds = 1) =>
  respond(503, message, { "retry-after": String(retryAfterSeconds) })

const describeIssues = (error: HttpApiError.HttpApiDecodeError): string => {
  const parts = error.issues.map((issue) => {
    const path = issue.path.map(String).join(".")
    const message = issue._tag === "Unexpected" ? "is not an accepted field" : issue.message
    return path === "" ? message : `${path}: ${message}`
  })
  return `invalid request: ${parts.length > 0 ? parts.join("; ") : error.message}`
}

const isBodyTooLarge = (error: HttpServerError.RequestError) => String(error.cause).includes("maxBytes")

const fromError = (error: unknown): Option.Option<HttpServerResponse.HttpServerResponse> => {
  if (error instanceof BadRequest) return Option.some(respond(400, error.message))
  if (error instanceof NotFound) return Option.some(respond(404, error.message))
  if (error instanceof PayloadTooLarge) return Option.some(respond(413, error.message))
  if (error instanceof PurchaseRefused) return Option.some(respond(422, error.message))
  if (error instanceof Unavailable) return Option.some(unavailable(error.message, error.retryAfterSeconds))
  if (error instanceof HttpApiError.HttpApiDecodeError) return Option.some(respond(400, describeIssues(error)))
  if (error instanceof HttpServerError.RouteNotFound) {
    const url = error.request.url.length > 120 ? `${error.request.url.slice(0, 120)}…` : error.request.url
    return Option.some(respond(404, `no such endpoint: ${error.request.method} ${url}`))
  }
  if (error instanceof HttpServerError.RequestError) {
    return Option.some(
      isBodyTooLarge(error)
        ? respond(413, "request body is too large")
        : respond(400, "request body is not valid JSON")
    )
  }
  if (error instanceof SqlError) return Option.some(unavailable("the database is unavailable; retry shortly", 2))
  return Option.none()
}

const hasBody = (request: HttpServerRequest.HttpServerRequest) =>
  request.method === "POST" || request.method === "PUT" || request.method === "PATCH"

/**
 * The response for a failed request. An interruption that reaches here came from elsewhere (a
 * concert's message cut off by its shard moving, a runner stopping), not from this request's
 * client: a retryable 503 with its body, never the framework's empty one. (When the request's
 * own fiber is interrupted, because its client went away, no response is sent at all.)
 */
export const answer = (cause: Cause.Cause<unknown>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.succeed(unavailable("the request was interrupted; retry"))
  const error = Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause))
  const response = Option.flatMap(error, fromError)
  if (Option.isSome(response)) return Effect.succeed(response.value)
  return Effect.as(Effect.logError("request failed unexpectedly", cause), respond(500, "internal error"))
}

export const ErrorResponsesLive = HttpApiBuilder.middleware(
  Effect.gen(function*() {
    const maxBodyBytes = yield* positiveInteger("MAX_BODY_BYTES", 64 * 1024)
    return (app) => {
      // Composed once, not per request.
      const guarded = app.pipe(
        HttpServerRequest.withMaxBodySize(Option.some(maxBodyBytes)),
        Effect.catchAllCause(answer)
      )
      return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const declared = Number(request.headers["content-length"] ?? "0")
        if (declared > maxBodyBytes) {
          // Refused before reading it; Node discards the unread body so the client still reads this.
          return Effect.succeed(respond(413, `request body is larger than ${maxBodyBytes} bytes`))
        }
        // Every body this API takes is JSON. Other declared types were refused (415) by the
        // server (ServiceServer); a body sent without a type, or as some `+json` type, is read
        // as JSON. GETs pass through untouched.
        return hasBody(request) && request.headers["content-type"]?.includes("application/json") !== true
          ? Effect.provideService(
            guarded,
            HttpServerRequest.HttpServerRequest,
            request.modify({ headers: { ...request.headers, "content-type": "application/json" } })
          )
          : guarded
      })
    }
  })
)
