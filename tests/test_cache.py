"""GenerationalCache: per-key refusal of fills that raced with a write, bounds, expiry, counters."""

from __future__ import annotations

from segmentd.cache import GenerationalCache


class FakeTimer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fill__key_invalidated_since_the_read__refused():
    # Given: a read of "a" begins, then "a" is written
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    generation = cache.generation
    cache.invalidate("a")
    # When / Then: the value read before the write is not cached
    assert cache.fill("a", 1, generation) is False
    assert cache.get("a") is None


def test_fill__other_keys_invalidated_since_the_read__accepted():
    # Given: a read of "a" begins while other users are written, many times
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    generation = cache.generation
    for i in range(1000):
        cache.invalidate(f"other-{i}")
    # When / Then: a write to one user never costs another user's fill
    assert cache.fill("a", 1, generation) is True
    assert cache.get("a") == 1


def test_fill__read_began_after_the_invalidation__accepted():
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    cache.invalidate("a")
    assert cache.fill("a", 2, cache.generation) is True


def test_invalidate__drops_the_entry():
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    cache.fill("a", 1, cache.generation)
    cache.invalidate("a")
    assert cache.get("a") is None


def test_fill__more_invalidations_than_remembered__older_reads_refused():
    # Given: only two invalidations are remembered, and three happen during a read
    cache: GenerationalCache[str, int] = GenerationalCache(10, None, remembered_invalidations=2)
    generation = cache.generation
    cache.invalidate("x")
    cache.invalidate("y")
    cache.invalidate("z")  # "x" is forgotten: the floor rises past the read
    # When / Then: conservative, never stale; reads begun after that are cached again
    assert cache.fill("x", 1, generation) is False
    assert cache.fill("q", 1, generation) is False
    assert cache.fill("x", 1, cache.generation) is True


def test_clear__refuses_every_fill_begun_before():
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    cache.fill("a", 1, cache.generation)
    generation = cache.generation
    cache.clear()
    assert (len(cache), cache.fill("b", 1, generation), cache.fill("b", 1, cache.generation)) == (
        0,
        False,
        True,
    )


def test_no_ttl__entries_never_expire():
    timer = FakeTimer()
    cache: GenerationalCache[str, int] = GenerationalCache(10, None, timer=timer)
    cache.fill("a", 1, cache.generation)
    timer.now = 1e12
    assert cache.get("a") == 1


def test_ttl__entry_expires_after_it():
    timer = FakeTimer()
    cache: GenerationalCache[str, int] = GenerationalCache(10, 300, timer=timer)
    cache.fill("a", 1, cache.generation)
    timer.now = 299.0
    assert cache.get("a") == 1
    timer.now = 300.0
    assert cache.get("a") is None


def test_ttl_zero__caches_nothing():
    cache: GenerationalCache[str, int] = GenerationalCache(10, 0)
    assert cache.fill("a", 1, cache.generation) is False
    assert cache.get("a") is None


def test_counters__hits_misses_evictions_and_size():
    # Given: room for two entries
    cache: GenerationalCache[str, int] = GenerationalCache(2, None)
    for key in ("a", "b", "c"):
        cache.fill(key, 1, cache.generation)
    # When
    cache.get("c")
    cache.get("a")  # evicted as the least recently used
    # Then
    assert (cache.hits, cache.misses, cache.evictions, len(cache), cache.maxsize) == (1, 1, 1, 2, 2)


def test_replace__fill_begun_before__refused_and_the_replacing_value_stands():
    # Given: a read of "a" begins, then a write replaces "a" with the value it read back
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    generation = cache.generation
    cache.replace("a", 2)
    # When / Then: the older read cannot overwrite the write's value
    assert cache.fill("a", 1, generation) is False
    assert cache.get("a") == 2


def test_replace__fill_begun_after__accepted():
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    cache.replace("a", 2)
    assert cache.fill("a", 3, cache.generation) is True
    assert cache.get("a") == 3


def test_replace__cache_of_nothing__stores_nothing():
    cache: GenerationalCache[str, int] = GenerationalCache(10, 0)
    cache.replace("a", 2)
    assert cache.peek("a") is None


def test_peek__counts_neither_hit_nor_miss():
    cache: GenerationalCache[str, int] = GenerationalCache(10, None)
    cache.replace("a", 1)
    assert (cache.peek("a"), cache.peek("b")) == (1, None)
    assert (cache.hits, cache.misses) == (0, 0)


def test_peek__expired_entry__none():
    timer = FakeTimer()
    cache: GenerationalCache[str, int] = GenerationalCache(10, 5, timer=timer)
    cache.replace("a", 1)
    timer.now = 6
    assert cache.peek("a") is None
