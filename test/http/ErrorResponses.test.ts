import { expect, it } from "@effect/vitest"
import { Cause, Effect, FiberId } from "effect"
import { answer } from "../../src/http/ErrorResponses.js"
import { Unavailable } from "../../src/domain/Errors.js"

const bodyOf = (response: { readonly body: unknown }) => {
  const body = response.body as { readonly _tag: string; readonly body?: Uint8Array }
  return body._tag === "Uint8Array" && body.body !== undefined ? JSON.parse(new TextDecoder().decode(body.body)) : undefined
}

it.effect("an interruption from elsewhere is a retryable 503 with its JSON body, like every 503", () =>
  Effect.gen(function*() {
    for (
      const cause of [
        Cause.interrupt(FiberId.none),
        Cause.fail(new Unavailable({ message: "too many requests for this concert; retry shortly" }))
      ]
    ) {
      const response = yield* answer(cause)
      expect(response.status).toBe(503)
      expect(response.headers["retry-after"]).toBeDefined()
      expect(typeof bodyOf(response).error).toBe("string")
    }
  }))
