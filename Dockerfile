# Multi-stage build: the Go toolchain builds the three commands; the runtime image holds only them and the sample
# data.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 hpnorton
COPY --from=build /out/ /usr/local/bin/
COPY testdata /data
USER hpnorton
WORKDIR /data
ENTRYPOINT ["worker"]
