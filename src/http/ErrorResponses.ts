/**
 * What the framework raises itself, answered as JSON `{"error": "..."}` in one place: bodies
 * that are not JSON or do not decode, unknown routes, oversized bodies, a database that went
 * away under a query (503, retryable), defects (logged, 500). The API's own errors
 * (`src/domain/Errors.ts`) pass through untouched for HttpApi to encode from their
 * declarations; this only adds the `Retry-After` a 503 carries, which a schema cannot.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Exit, Option } from "effect"
import { retryAfterSeconds, Unauthorized } from "../domain/Errors.js"
import { maxBodyBytes, requestTimeoutMillis } from "../Settings.js"

const respond = (status: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ error: message }, { status, headers })

const unavailable = (message: string, retryAfterSeconds = 1) =>
  respond(503, message, { "retry-after": String(retryAfterSeconds) })

/** The decoder's messages quote what they got: a 50 KB value is not echoed back whole. */
const clipped = (text: string) => text.length > 200 ? `${text.slice(0, 200)}…` : text

const describeIssues = (error: HttpApiError.HttpApiDecodeError): string => {
  const parts = new Set(error.issues.slice(0, 10).map((issue) => {
    const path = clipped(issue.path.map(String).join("."))
    const message = issue._tag === "Unexpected" ? "is not an accepted field" : clipped(issue.message)
    return path === "" ? message : `${path}: ${message}`
  }))
  return `invalid request: ${parts.size > 0 ? [...parts].join("; ") : clipped(error.message)}`
}

/** The answer to what the framework or the database raised, if this is one. */
const fromFramework = (error: unknown): Option.Option<HttpServerResponse.HttpServerResponse> => {
  if (error instanceof HttpApiError.HttpApiDecodeError) return Option.some(respond(400, describeIssues(error)))
  if (error instanceof HttpServerError.RouteNotFound) {
    const url = error.request.url.length > 120 ? `${error.request.url.slice(0, 120)}…` : error.request.url
    return Option.some(respond(404, `no such endpoint: ${error.request.method} ${url}`))
  }
  // Bodies over the limit never get here: `Content-Length` is checked below before reading, and
  // a chunked body is measured by the server (`ServiceServer`). What is left is unreadable.
  if (error instanceof HttpServerError.RequestError) return Option.some(respond(400, "request body is not valid JSON"))
  // Repositories die with the database's error: nothing a handler can do but say retry.
  if (error instanceof SqlError) return Option.some(unavailable("the database is unavailable; retry shortly", 2))
  return Option.none()
}

const askForKey = HttpApp.appendPreResponseHandler((_request, response) =>
  Effect.succeed(HttpServerResponse.setHeader(response, "www-authenticate", "Bearer"))
)

const withRetryAfter = (seconds: number) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))
  )

/**
 * The response for a failed request, or the failure itself when it is the API's own error.
 * An interruption that reaches here came from elsewhere (a concert's message cut off by its
 * shard moving, a runner stopping), not from this request's client: a retryable 503 with its
 * body, never the framework's empty one. (When the request's own fiber is interrupted, because
 * its client went away, no response is sent at all.)
 */
export const answer = (
  cause: Cause.Cause<unknown>
): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.succeed(unavailable("the request was interrupted; retry"))
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const response = fromFramework(failure.value)
    if (Option.isSome(response)) return Effect.succeed(response.value)
    // A 401 says how to authenticate (RFC 9110).
    if (failure.value instanceof Unauthorized) return Effect.zipRight(askForKey, Effect.failCause(cause))
    const seconds = retryAfterSeconds(failure.value)
    return seconds === undefined ? Effect.failCause(cause) : Effect.zipRight(withRetryAfter(seconds), Effect.failCause(cause))
  }
  const response = Option.flatMap(Cause.dieOption(cause), fromFramework)
  if (Option.isSome(response)) return Effect.succeed(response.value)
  return Effect.as(Effect.logError("request failed unexpectedly", cause), respond(500, "internal error"))
}

const hasBody = (request: HttpServerRequest.HttpServerRequest) =>
  request.method === "POST" || request.method === "PUT" || request.method === "PATCH"

/** How deep a JSON text nests its arrays and objects (strings skipped). */
export const nesting = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // a backslash: the next character is escaped
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth)
    else if (c === 93 || c === 125) depth--
  }
  return deepest
}

/** No body this API takes nests deeper than this; far deeper ones break the decoder's messages. */
const maxNesting = 32

/**
 * A body that failed to decode and nests thousands deep: describing it (the decoder prints what
 * it got) overflows the stack, which reaches here as a defect. The body, read and kept by then,
 * says whether that is what happened.
 */
const tooDeep = (request: HttpServerRequest.HttpServerRequest, cause: Cause.Cause<unknown>) =>
  hasBody(request) && Option.isSome(Cause.dieOption(cause))
    ? Effect.map(Effect.orElseSucceed(request.text, () => ""), (text) =>
      nesting(text) > maxNesting
        ? Option.some(respond(400, `invalid request: the body nests deeper than ${maxNesting} levels`))
        : Option.none())
    : Effect.succeed(Option.none())

/**
 * Whether a request may be cut off by the deadline: one whose repeat is harmless, so that a 503
 * ("retry") is true even when the work it cut off completes afterwards. Reads (GET, HEAD), PUTs
 * and DELETEs (idempotent: a repeat answers the same), and the two POSTs that are too (a
 * payment's repeat returns the CONFIRMED reservation; a print's asks again). Not a purchase,
 * hold or registration (their own deadline, after which they are sure never to be saved), a
 * checkout (its repeat is a 409), nor what creates (a concert, an organiser, a key). The path is
 * read as the router reads it (any case, doubled or trailing slashes); a form it does not
 * recognise gets no deadline, never a wrong one.
 */
const cutOffSafely = (request: HttpServerRequest.HttpServerRequest) => {
  const method = request.method
  if (method === "GET" || method === "HEAD" || method === "PUT" || method === "DELETE") return true
  return method === "POST" && repeatablePost.test(request.url)
}

/** A payment or a print, its path as the router reads it: one test, no copy (every purchase asks). */
const repeatablePost = /^\/+api\/+v1\/+(?:reservations\/+[^/?]+\/+payment|tickets\/+[^/?]+\/+print)\/*(?:\?.*)?$/i

export const ErrorResponsesLive = HttpApiBuilder.middleware(
  Effect.gen(function*() {
    const bodyLimit = yield* maxBodyBytes
    const timeout = yield* requestTimeoutMillis
    const late = () =>
      unavailable(`no answer within ${Math.round(timeout / 1000)} s; retry`, 2)
    return (app) => {
      // Composed once, not per request.
      // What `answer` fails with is a handler's own error, which the handler's type limits to
      // the ones its endpoint declares: HttpApi encodes it next (it wraps this middleware).
      const answered = Effect.catchAllCause(app, (cause) =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) =>
            Effect.flatMap(tooDeep(request, cause), Option.match({ onNone: () => answer(cause), onSome: Effect.succeed }))
        )) as Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
      // Bounded: answered by the deadline, whatever it waits for. The request's work is cut off
      // in the background (a query waiting on a database that stopped answering is cancelled
      // when it answers again); the client does not wait for that. The framework runs its
      // middleware uninterruptibly (only handlers are interruptible): without `interruptible`
      // here, the deadline would wait for the very work it cuts off.
      // The work's exit is carried across as a value: a fiber's refs (a 503's `Retry-After`,
      // set with the error it answers) come back only with a success.
      const bounded = Effect.timeoutTo(Effect.interruptible(Effect.disconnect(Effect.exit(answered))), {
        duration: timeout,
        onSuccess: (exit) => exit,
        onTimeout: () => Exit.succeed(late())
      }).pipe(Effect.flatten)
      return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const guarded = cutOffSafely(request) ? bounded : answered
        const declared = Number(request.headers["content-length"] ?? "0")
        if (declared > bodyLimit) {
          // Refused before reading it; Node discards the unread body so the client still reads this.
          return Effect.succeed(respond(413, `request body is larger than ${bodyLimit} bytes`))
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
