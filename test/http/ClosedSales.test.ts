import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, TestClock } from "effect"
import { ClosedSales } from "../../src/http/ClosedSales.js"

const WithTtl = ClosedSales.Default.pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["CLOSED_SALES_TTL", "2 seconds"]]))))
)

it.effect("a closed sale is remembered for its TTL, then asked about again; a PUT forgets it at once", () =>
  Effect.gen(function*() {
    const closed = yield* ClosedSales
    expect(yield* closed.get("c1")).toBeUndefined()
    yield* closed.remember("c1", "SoldOut")
    yield* closed.remember("c2", "Cancelled")
    yield* TestClock.adjust("1999 millis")
    expect(yield* closed.get("c1")).toBe("SoldOut")
    expect(yield* closed.get("c2")).toBe("Cancelled")
    closed.forget("c2")
    expect(yield* closed.get("c2")).toBeUndefined()
    yield* TestClock.adjust("1 millis")
    expect(yield* closed.get("c1")).toBeUndefined()
  }).pipe(Effect.provide(WithTtl)))

it.effect("a sell-out made of holds is remembered no longer than until the earliest hold expires", () =>
  Effect.gen(function*() {
    const closed = yield* ClosedSales
    yield* TestClock.adjust("10 seconds")
    yield* closed.remember("c1", "SoldOut", 10_500)
    yield* TestClock.adjust("499 millis")
    expect(yield* closed.get("c1")).toBe("SoldOut")
    yield* TestClock.adjust("1 millis")
    expect(yield* closed.get("c1")).toBeUndefined()
  }).pipe(Effect.provide(WithTtl)))
