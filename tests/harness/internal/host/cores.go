package host

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// onlineCPUsFile lists the node's usable CPUs in the kernel's list format ("0-3,6").
const onlineCPUsFile = "/sys/devices/system/cpu/online"

// parseCPUList reads the kernel's CPU list format ("0-2,5") into sorted ids.
func parseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("cpu list %q: bad entry %q", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	sort.Ints(out)
	return out, nil
}

// joinCores renders core ids as LinuxResources.cpuset_cpus does: comma-joined.
func joinCores(cores []int) string {
	s := make([]string, len(cores))
	for i, c := range cores {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// coreList renders sorted core ids in the kernel list format ("0-2,5"), as the
// client writes NOMAD_CPU_CORES.
func coreList(cores []int) string {
	var parts []string
	for i := 0; i < len(cores); {
		j := i
		for j+1 < len(cores) && cores[j+1] == cores[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(cores[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cores[i], cores[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// coreBook is the client's ledger of reserved cores: each core belongs to at
// most one task (owner key) until that task is destroyed.
type coreBook struct {
	mu    sync.Mutex
	owner map[int]string
}

// reserve gives owner n free cores out of online, taken from the highest id
// downwards (deterministic, and a single core is not core 0 when there are more),
// returned in ascending order.
func (b *coreBook) reserve(owner string, n int, online []int) ([]int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owner == nil {
		b.owner = map[int]string{}
	}
	var got []int
	for i := len(online) - 1; i >= 0 && len(got) < n; i-- {
		if _, taken := b.owner[online[i]]; !taken {
			got = append(got, online[i])
		}
	}
	if len(got) < n {
		return nil, fmt.Errorf("resources.cores = %d: only %d of the node's %d online cores are free", n, len(got), len(online))
	}
	for _, c := range got {
		b.owner[c] = owner
	}
	sort.Ints(got)
	return got, nil
}

// claim records cores as owner's (a recovered task keeps the cores its handle names).
func (b *coreBook) claim(owner string, cores []int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owner == nil {
		b.owner = map[int]string{}
	}
	for _, c := range cores {
		b.owner[c] = owner
	}
}

// release frees every core owner holds.
func (b *coreBook) release(owner string) {
	if owner == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for c, o := range b.owner {
		if o == owner {
			delete(b.owner, c)
		}
	}
}

// onlineCPUs lists the node's online CPU ids.
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile(onlineCPUsFile)
	if err != nil {
		return nil, err
	}
	return parseCPUList(string(b))
}
