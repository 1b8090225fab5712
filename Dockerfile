# Multi-stage build. The Go toolchain builds the commands; the runtime image holds only them, the CA certificates
# for rediss:// and TLS MySQL, and the sample data. The binaries are static (CGO_ENABLED=0), so the runtime image
# needs no distribution, and scratch has no version to drift.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/enqueue ./cmd/worker ./cmd/monitor

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/ /usr/local/bin/
COPY testdata /data
# Any user but root; scratch has no /etc/passwd, so a number.
USER 10001:10001
WORKDIR /data
ENV PATH=/usr/local/bin
ENTRYPOINT ["worker"]
