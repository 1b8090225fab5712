// The deployment files are checked here by reading them, since no Docker engine runs where the tests do: the
// compose services must run commands the Dockerfile builds, set only environment variables those commands read,
// publish the ports they listen on, and pin every image to a version.
package hpnorton_test

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"hpnorton/internal/testenv"
	"hpnorton/repo"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Hostname    string            `yaml:"hostname"`
		Build       string            `yaml:"build"`
		Command     []string          `yaml:"command"`
		Entrypoint  *[]string         `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Expose      []string          `yaml:"expose"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		ContainerName string `yaml:"container_name"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// pinned reports whether an image reference names a version: a tag with a digit, and not "latest".
var pinned = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*$`)

// publishedPort is a published port as docker-compose.yml writes it: this machine's loopback only, at a host port
// a variable moves, with its default, then the container port.
var publishedPort = regexp.MustCompile(`^127\.0\.0\.1:\$\{(HPNORTON_[A-Z]+_PORT):-([0-9]+)\}:([0-9]+)$`)

// envRead returns the environment variables a command reads, as its -h lists them: "(env NAME)".
func envRead(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", bin, err, out)
	}
	var names []string
	for _, m := range regexp.MustCompile(`\(env (HPNORTON_[A-Z_]+)\)`).FindAllStringSubmatch(string(out), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s -h lists no environment variables:\n%s", bin, out)
	}
	return names
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("address %q: %v", hostport, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	dir := filepath.Dir(testenv.Build(t, "worker", "monitor", "enqueue"))
	bins := map[string]string{}
	for _, cmd := range []string{"worker", "monitor", "enqueue"} {
		bins[cmd] = filepath.Join(dir, cmd)
	}

	for _, name := range []string{"redis", "mariadb", "worker", "monitor", "enqueue"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no service %q", name)
		}
	}
	for name, s := range c.Services {
		switch {
		case s.Image != "" && !pinned.MatchString(s.Image):
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		case s.Image == "" && s.Build != ".":
			t.Errorf("service %s: neither a pinned image nor the Dockerfile here", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
			if d.Condition == "service_healthy" && target.Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		if s.Build == "" {
			continue
		}
		// Our own commands: built by the Dockerfile, reading what they are given. The image's entrypoint is the
		// worker, so a service that names its command must clear it.
		if s.Entrypoint == nil || len(*s.Entrypoint) > 0 {
			t.Errorf("service %s keeps the image's entrypoint, so its command %v would run as the worker's arguments", name, s.Command)
		}
		if len(s.Command) == 0 || bins[s.Command[0]] == "" {
			t.Errorf("service %s runs %v, not one of the commands the Dockerfile builds", name, s.Command)
			continue
		}
		read := envRead(t, bins[s.Command[0]])
		for env := range s.Environment {
			if !slices.Contains(read, env) {
				t.Errorf("service %s sets %s, which %s does not read (it reads %v)", name, env, s.Command[0], read)
			}
		}
		if url, ok := s.Environment["HPNORTON_REDIS_URL"]; ok {
			opt, err := redis.ParseURL(url)
			if err != nil || opt.Addr != "redis:6379" {
				t.Errorf("service %s: HPNORTON_REDIS_URL %q does not name the redis service's port 6379", name, url)
			}
		}
		if dsn, ok := s.Environment["HPNORTON_MYSQL_DSN"]; ok {
			if _, err := repo.ParseDSN(dsn); err != nil {
				t.Errorf("service %s: the commands refuse its HPNORTON_MYSQL_DSN: %v", name, err)
			}
			cfg, err := mysql.ParseDSN(dsn)
			m := c.Services["mariadb"].Environment
			if err != nil || cfg.Addr != "mariadb:3306" || cfg.Passwd != m["MARIADB_ROOT_PASSWORD"] || cfg.DBName != m["MARIADB_DATABASE"] {
				t.Errorf("service %s: HPNORTON_MYSQL_DSN %q does not match the mariadb service", name, dsn)
			}
		}
	}

	// Scaling: `--scale worker=N` fails on a fixed container name or a published host port.
	w := c.Services["worker"]
	if w.ContainerName != "" || len(w.Ports) > 0 {
		t.Errorf("worker has container_name %q and ports %v; either stops --scale", w.ContainerName, w.Ports)
	}
	if ops := w.Environment["HPNORTON_OPS"]; ops == "" || !slices.Contains(w.Expose, port(t, ops)) {
		t.Errorf("worker serves its metrics on %q but exposes %v", ops, w.Expose)
	}
	// Published ports: each service publishes the port it listens on, to this machine only, at a host port that a
	// variable of its own moves (a machine with its own Redis or MariaDB has those ports taken), by default the
	// same number; the README names each variable.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	listens := map[string]string{"redis": "6379", "mariadb": "3306"}
	if addr := c.Services["monitor"].Environment["HPNORTON_MONITOR_ADDR"]; addr != "" {
		listens["monitor"] = port(t, addr)
	}
	vars := map[string]string{}
	for name, s := range c.Services {
		if len(s.Ports) == 0 {
			continue
		}
		if len(s.Ports) != 1 || listens[name] == "" {
			t.Errorf("service %s publishes %v; want one port, of redis, mariadb or the monitor", name, s.Ports)
			continue
		}
		m := publishedPort.FindStringSubmatch(s.Ports[0])
		if m == nil || m[2] != listens[name] || m[3] != listens[name] {
			t.Errorf("service %s publishes %q, want 127.0.0.1:${HPNORTON_…_PORT:-%s}:%s", name, s.Ports[0], listens[name], listens[name])
			continue
		}
		if other, ok := vars[m[1]]; ok {
			t.Errorf("services %s and %s publish at the same variable %s", name, other, m[1])
		}
		vars[m[1]] = name
		if !strings.Contains(string(readme), m[1]) {
			t.Errorf("service %s's host port variable %s is not in the README", name, m[1])
		}
	}
	if len(vars) != len(listens) {
		t.Errorf("published ports through %v, want one for each of %v", vars, listens)
	}
	// The database: the release series the tests run against, LOAD DATA LOCAL on, the data outliving the container,
	// and a fixed host name, which is part of the database's identity.
	my := c.Services["mariadb"]
	if want := "mariadb:" + testedSeries(t) + "."; !strings.HasPrefix(my.Image, want) {
		t.Errorf("mariadb image %q is not of the series the tests run against; want %s…", my.Image, want)
	}
	if !slices.Contains(my.Command, "--local-infile=1") {
		t.Errorf("mariadb command %v lacks --local-infile=1", my.Command)
	}
	if my.Hostname == "" {
		t.Error("mariadb has no fixed hostname: a recreated container would give the database another identity, and its queued tasks another queue")
	}
	if len(my.Volumes) != 1 || !strings.HasSuffix(my.Volumes[0], ":/var/lib/mysql") {
		t.Errorf("mariadb volumes %v, want one for /var/lib/mysql", my.Volumes)
	} else if _, ok := c.Volumes[strings.Split(my.Volumes[0], ":")[0]]; !ok {
		t.Errorf("mariadb keeps its data in %q, not in a named volume", my.Volumes[0])
	}
	// The one-shot enqueue imports the sample data the image holds at /data.
	e := c.Services["enqueue"]
	if len(e.Command) != 2 || e.Command[1] != "/data" {
		t.Errorf("enqueue runs %v, want enqueue /data", e.Command)
	}
}

// TestDockerfile checks the image build: every base image pinned, the commands compose runs built, and the sample
// data copied to where the enqueue service reads it.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	for _, f := range froms {
		if f[1] != "scratch" && !pinned.MatchString(f[1]) {
			t.Errorf("Dockerfile: base image %q is not pinned to a version", f[1])
		}
	}
	for _, cmd := range []string{"./cmd/worker", "./cmd/monitor", "./cmd/enqueue"} {
		if !strings.Contains(text, cmd) {
			t.Errorf("Dockerfile does not build %s", cmd)
		}
	}
	if !regexp.MustCompile(`(?m)^COPY testdata /data$`).MatchString(text) {
		t.Error("Dockerfile does not copy testdata to /data")
	}
}

// TestDockerignore checks the build context against .dockerignore, with Docker's own matcher: every file the build
// reads is in it, and nothing else, so that editing the README, docs, docker-compose.yml, the scripts, the lab or a
// test rebuilds no image (make compose-test proves it with a real build).
func TestDockerignore(t *testing.T) {
	t.Parallel()
	f, err := os.Open(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, path := range strings.Fields(string(out)) {
		ignored, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatal(err)
		}
		top, _, _ := strings.Cut(path, "/")
		built := path == "go.mod" || path == "go.sum" || path == "repo/schema.sql" ||
			top == "testdata" && strings.HasSuffix(path, ".csv") ||
			slices.Contains([]string{"cmd", "internal", "repo", "tasks"}, top) && strings.HasSuffix(path, ".go") &&
				!strings.HasSuffix(path, "_test.go") && !strings.Contains(path, "/testdata/")
		switch {
		case built && ignored:
			t.Errorf("%s is read by the build but .dockerignore leaves it out", path)
		case !built && !ignored:
			t.Errorf("%s is in the build context: editing it would rebuild the images", path)
		}
	}
}

// testedSeries is the test server's release series, such as 10.11, read from the server the tests run against.
func testedSeries(t *testing.T) string {
	t.Helper()
	ns := testenv.Namespace(t)
	db, err := sql.Open("mysql", testenv.MySQL(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version string
	if err := db.QueryRow("SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version, "MariaDB") {
		t.Fatalf("the tests run against %s, not MariaDB; compose's database should be that one", version)
	}
	parts := strings.SplitN(version, ".", 3)
	return parts[0] + "." + parts[1]
}
