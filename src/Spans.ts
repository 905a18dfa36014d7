/**
 * Spans only when tracing is on. With tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`),
 * `Effect.withSpan` still makes a no-op span and provides it to what it wraps: a copy of the
 * fiber's context and two of its fiber refs, about twenty runtime steps, for a span nobody
 * reads. The service's spans are made with `withSpan` from here, which is `Effect.withSpan`
 * when tracing is on and nothing at all when it is off.
 */
import { Context, Effect, type Fiber, FiberRef, Option, Tracer } from "effect"

export const withSpan = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) =>
    fiber.getFiberRef(FiberRef.currentTracerEnabled) ? Effect.withSpan(self, name, options ?? {}) : self
  )

/**
 * The current span, if there is one: `Effect.option(Effect.currentSpan)` without the failure
 * it is made of when there is none (as with tracing off), an error with a stack trace.
 */
export const currentSpan: Effect.Effect<Option.Option<Tracer.Span>> = Effect.map(
  Effect.serviceOption(Tracer.ParentSpan),
  Option.filter((span): span is Tracer.Span => span._tag === "Span")
)

/** `currentSpan` of a fiber, read from its context directly (in `Effect.withFiberRuntime`). */
export const spanOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Tracer.Span | undefined => {
  const span = Context.getOption(fiber.currentContext, Tracer.ParentSpan)
  return Option.isSome(span) && span.value._tag === "Span" ? span.value : undefined
}
