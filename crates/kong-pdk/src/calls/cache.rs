//! Answers of one event's reads, keyed by method and encoded arguments.
//! The entries keep their buffers from event to event, so a warm
//! connection caches without allocating.

use super::rules::Topic;

#[derive(Debug)]
struct Entry {
    method: &'static str,
    topic: Topic,
    args: Vec<u8>,
    answer: Vec<u8>,
    /// The answer arrived (an entry is reserved before the round trip).
    ready: bool,
}

/// The read cache of one event.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    entries: Vec<Entry>,
    /// Entries in use this event; the rest are spare buffers.
    used: usize,
}

/// A reserved entry, filled when Kong's answer arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot(usize);

impl ReadCache {
    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }

    fn live(&self) -> &[Entry] {
        &self.entries[..self.used]
    }

    /// The answer Kong gave earlier in this event to the same call.
    pub(crate) fn get(&self, method: &str, args: &[u8]) -> Option<&[u8]> {
        self.live()
            .iter()
            .find(|e| e.ready && e.method == method && e.args == args)
            .map(|e| e.answer.as_slice())
    }

    /// Reserves an entry for a call about to be sent.
    pub(crate) fn reserve(&mut self, method: &'static str, topic: Topic, args: &[u8]) -> Slot {
        if self.used == self.entries.len() {
            self.entries.push(Entry {
                method,
                topic,
                args: Vec::new(),
                answer: Vec::new(),
                ready: false,
            });
        }
        let entry = &mut self.entries[self.used];
        entry.method = method;
        entry.topic = topic;
        entry.args.clear();
        entry.args.extend_from_slice(args);
        entry.ready = false;
        self.used += 1;
        Slot(self.used - 1)
    }

    /// Stores Kong's answer in a reserved entry (unless it was dropped since).
    pub(crate) fn fill(&mut self, slot: Slot, answer: &[u8]) {
        if let Some(entry) = self.entries[..self.used].get_mut(slot.0) {
            entry.answer.clear();
            entry.answer.extend_from_slice(answer);
            entry.ready = true;
        }
    }

    /// Drops every entry of `topic`.
    pub(crate) fn drop_topic(&mut self, topic: Topic) {
        let mut i = 0;
        while i < self.used {
            if self.entries[i].topic == topic {
                // Keep the buffers: swap the entry into the spare part.
                self.used -= 1;
                self.entries.swap(i, self.used);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_the_same_method_and_arguments() {
        let mut cache = ReadCache::default();
        let slot = cache.reserve("kong.request.get_header", Topic::RequestHeaders, b"host");
        assert_eq!(cache.get("kong.request.get_header", b"host"), None);
        cache.fill(slot, b"answer");
        assert_eq!(
            cache.get("kong.request.get_header", b"host"),
            Some(&b"answer"[..])
        );
        assert_eq!(cache.get("kong.request.get_header", b"hosts"), None);
        assert_eq!(cache.get("kong.response.get_header", b"host"), None);
    }

    #[test]
    fn dropping_a_topic_keeps_the_others_and_the_buffers() {
        let mut cache = ReadCache::default();
        for (m, t) in [
            ("a", Topic::RequestHeaders),
            ("b", Topic::CtxShared),
            ("c", Topic::RequestHeaders),
        ] {
            let slot = cache.reserve(m, t, b"");
            cache.fill(slot, m.as_bytes());
        }
        cache.drop_topic(Topic::RequestHeaders);
        assert_eq!(cache.get("a", b""), None);
        assert_eq!(cache.get("b", b""), Some(&b"b"[..]));
        assert_eq!(cache.get("c", b""), None);
        assert_eq!(cache.entries.len(), 3);
        cache.clear();
        assert_eq!(cache.get("b", b""), None);
    }
}
