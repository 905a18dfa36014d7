/**
 * Spans only when tracing is on. With tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`),
 * `Effect.withSpan` still makes a no-op span and provides it to what it wraps: a copy of the
 * fiber's context and two of its fiber refs, about twenty runtime steps, for a span nobody
 * reads. The service's spans are made with `withSpan` from here, which is `Effect.withSpan`
 * when tracing is on and nothing at all when it is off.
 */
import { Effect, FiberRef, type Tracer } from "effect"

export const withSpan = (name: string, options?: Tracer.SpanOptions) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime<A, E, R>((fiber) =>
    fiber.getFiberRef(FiberRef.currentTracerEnabled) ? Effect.withSpan(self, name, options ?? {}) : self
  )
