import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer } from "@effect/platform"
import { SqlError } from "@effect/sql/SqlError"
import { expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, FiberId, Layer } from "effect"
import { Busy, Json, PlanNotReady, SoldOut } from "../../src/domain/Errors.js"
import { answer, ErrorResponsesLive } from "../../src/http/ErrorResponses.js"

const bodyOf = (response: { readonly body: unknown }) => {
  const body = response.body as { readonly _tag: string; readonly body?: Uint8Array }
  return body._tag === "Uint8Array" && body.body !== undefined ? JSON.parse(new TextDecoder().decode(body.body)) : undefined
}

it.effect("an interruption from elsewhere is a retryable 503 with its JSON body, like every 503", () =>
  Effect.gen(function*() {
    const response = yield* answer(Cause.interrupt(FiberId.none))
    expect(response.status).toBe(503)
    expect(response.headers["retry-after"]).toBe("1")
    expect(bodyOf(response)).toEqual({ error: "the request was interrupted; retry" })
  }))

/** One endpoint per way a handler can fail, behind the real error middleware. */
class TestApi extends HttpApi.make("test").add(
  HttpApiGroup.make("fails")
    .add(HttpApiEndpoint.get("busy", "/busy").addError(Json(Busy)))
    .add(HttpApiEndpoint.get("plan", "/plan").addError(Json(PlanNotReady)))
    .add(HttpApiEndpoint.get("soldOut", "/sold-out").addError(Json(SoldOut)))
    .add(HttpApiEndpoint.get("database", "/database"))
    .add(HttpApiEndpoint.get("defect", "/defect"))
) {}

const FailsLive = HttpApiBuilder.group(TestApi, "fails", (handlers) =>
  handlers
    .handle("busy", () => Effect.fail(new Busy({ message: "too many requests for this concert; retry shortly" })))
    .handle("plan", () => Effect.fail(PlanNotReady.of()))
    .handle("soldOut", () => Effect.fail(SoldOut.of()))
    .handle("database", () => Effect.die(new SqlError({ cause: new Error("connection refused") })))
    .handle("defect", () => Effect.die(new Error("a bug"))))

it.effect("declared errors are encoded by HttpApi from their declaration; a 503 gets its Retry-After", () =>
  Effect.gen(function*() {
    const { dispose, handler } = HttpApiBuilder.toWebHandler(
      Layer.mergeAll(HttpApiBuilder.api(TestApi).pipe(Layer.provide(FailsLive)), ErrorResponsesLive, HttpServer.layerContext).pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
      )
    )
    const get = (path: string) =>
      Effect.promise(async () => {
        const response = await handler(new Request(`http://localhost${path}`))
        return {
          status: response.status,
          type: response.headers.get("content-type"),
          retryAfter: response.headers.get("retry-after"),
          body: await response.text()
        }
      })
    expect(yield* get("/busy")).toEqual({
      status: 503,
      type: "application/json",
      retryAfter: "1",
      body: "{\"error\":\"too many requests for this concert; retry shortly\"}"
    })
    expect(yield* get("/plan")).toMatchObject({ status: 503, retryAfter: "1" })
    expect(yield* get("/sold-out")).toEqual({
      status: 422,
      type: "application/json",
      retryAfter: null,
      body: "{\"error\":\"the concert is sold out\"}"
    })
    expect(yield* get("/database")).toEqual({
      status: 503,
      type: "application/json",
      retryAfter: "2",
      body: "{\"error\":\"the database is unavailable; retry shortly\"}"
    })
    expect(yield* get("/defect")).toEqual({
      status: 500,
      type: "application/json",
      retryAfter: null,
      body: "{\"error\":\"internal error\"}"
    })
    yield* Effect.promise(() => dispose())
  }))
