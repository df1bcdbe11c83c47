//! Character-level text data for language models (char-LSTM, tiny GPT).
//!
//! A [`CharVocab`] maps each distinct character of a text to a token id (the characters sorted by code
//! point, so the ids do not depend on where a character first appears). A [`CharText`] is a text encoded with
//! its vocabulary and split into a training part (the first `1 - val_fraction`) and a validation part (the
//! last `val_fraction`, 10% by default). Training batches are random windows of `block_size + 1` tokens: the
//! first `block_size` are the inputs and the last `block_size` the targets, so target `t` is the character
//! that follows input `t`:
//!
//! ```text
//! window   F  i  r  s  t  ␣  C
//! input    F  i  r  s  t  ␣         (block_size = 6)
//! target      i  r  s  t  ␣  C
//! ```
//!
//! Validation uses consecutive windows that overlap by one token, so every validation token after the first
//! is predicted exactly once.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use rand::Rng;

use super::error::{DataError, Result};
use crate::Tensor;

/// The characters of a text, sorted by code point; token id = position in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
    ids: HashMap<char, usize>,
}

impl CharVocab {
    /// The vocabulary of `text`: its distinct characters, sorted.
    ///
    /// ```
    /// use tensorgrad::data::CharVocab;
    /// let vocab = CharVocab::from_text("hello");
    /// assert_eq!(vocab.chars(), ['e', 'h', 'l', 'o']);
    /// assert_eq!(vocab.encode("hole")?, [1, 3, 2, 0]);
    /// assert_eq!(vocab.decode(&[1, 0, 2, 2, 3]), "hello");
    /// assert!(vocab.encode("help").is_err());
    /// # Ok::<(), tensorgrad::data::DataError>(())
    /// ```
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_chars(chars)
    }

    fn from_chars(chars: Vec<char>) -> Self {
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        CharVocab { chars, ids }
    }

    /// Number of distinct characters (the model's vocabulary size).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// True for the vocabulary of an empty text.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<usize> {
        self.ids.get(&c).copied()
    }

    /// The character with id `id`.
    ///
    /// # Panics
    ///
    /// If `id >= len()`.
    #[track_caller]
    pub fn char(&self, id: usize) -> char {
        self.chars[id]
    }

    /// Encodes `text` as token ids.
    ///
    /// # Errors
    ///
    /// [`DataError::UnknownChar`] for the first character that is not in the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        text.chars()
            .enumerate()
            .map(|(position, ch)| self.id(ch).ok_or(DataError::UnknownChar { ch, position }))
            .collect()
    }

    /// Decodes token ids back to text.
    ///
    /// # Panics
    ///
    /// If an id is `>= len()` (ids come from this vocabulary or from a model with `len()` outputs).
    #[track_caller]
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter().map(|&id| self.char(id)).collect()
    }
}

/// Token batches for a language model: `batch_size` rows of `block_size` tokens each.
///
/// # Shapes
///
/// `inputs` and `targets` are `[batch_size, block_size]` row-major; `targets[b][t]` is the token after
/// `inputs[b][t]` in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// Input token ids, `[batch_size, block_size]`.
    pub inputs: Vec<usize>,
    /// Target token ids (inputs shifted by one), `[batch_size, block_size]`.
    pub targets: Vec<usize>,
    /// Rows in this batch.
    pub batch_size: usize,
    /// Tokens per row.
    pub block_size: usize,
}

impl TokenBatch {
    /// The inputs as an i64 tensor `[batch_size, block_size]` (embedding indices).
    pub fn inputs_tensor(&self) -> Tensor {
        ids_tensor(&self.inputs, self.batch_size, self.block_size)
    }

    /// The targets as an i64 tensor `[batch_size, block_size]` (class indices for the loss).
    pub fn targets_tensor(&self) -> Tensor {
        ids_tensor(&self.targets, self.batch_size, self.block_size)
    }
}

fn ids_tensor(ids: &[usize], rows: usize, cols: usize) -> Tensor {
    Tensor::from_vec(ids.iter().map(|&i| i as i64).collect::<Vec<i64>>(), &[rows, cols])
}

/// A text encoded with its character vocabulary, split into training and validation tokens.
#[derive(Debug, Clone)]
pub struct CharText {
    path: Option<PathBuf>,
    vocab: CharVocab,
    tokens: Vec<usize>,
    split: usize,
}

impl CharText {
    /// The fraction of the text used for validation by [`from_file`](Self::from_file): the last 10%.
    pub const DEFAULT_VAL_FRACTION: f64 = 0.1;

    /// Reads a UTF-8 text file and splits it: the last 10% of its characters for validation.
    ///
    /// # Errors
    ///
    /// As [`from_file_with_split`](Self::from_file_with_split).
    ///
    /// ```
    /// use tensorgrad::data::CharText;
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/shakespeare.txt");
    /// let text = CharText::from_file(path)?;
    /// assert_eq!(text.vocab().len(), 78);
    /// assert_eq!(text.val().len(), 110_000);
    /// # Ok::<(), tensorgrad::data::DataError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file_with_split(path, Self::DEFAULT_VAL_FRACTION)
    }

    /// Reads a UTF-8 text file and keeps its last `val_fraction` of characters for validation.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] if the file cannot be read, [`DataError::Invalid`] if it is not UTF-8 or has fewer
    /// than 2 characters in its training or (when `val_fraction > 0`) validation part.
    ///
    /// # Panics
    ///
    /// If `val_fraction` is not in `[0, 1)`.
    #[track_caller]
    pub fn from_file_with_split(path: impl AsRef<Path>, val_fraction: f64) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            DataError::invalid(path, format!("not UTF-8 text (invalid byte sequence at byte {at})"))
        })?;
        let mut data = Self::from_text(&text, val_fraction);
        data.path = Some(path.to_path_buf());
        let n_val = data.val().len();
        if data.train().len() < 2 || (val_fraction > 0.0 && n_val < 2) {
            let msg = format!(
                "too short: {} characters give {} training and {n_val} validation characters (2 or more each)",
                data.tokens.len(),
                data.train().len(),
            );
            return Err(DataError::invalid(path, msg));
        }
        Ok(data)
    }

    /// Encodes `text` with its own vocabulary; the last `val_fraction` of its characters (rounded to the
    /// nearest character) are for validation.
    ///
    /// # Panics
    ///
    /// If `val_fraction` is not in `[0, 1)`.
    #[track_caller]
    pub fn from_text(text: &str, val_fraction: f64) -> Self {
        if !(0.0..1.0).contains(&val_fraction) {
            bad_fraction(val_fraction);
        }
        let vocab = CharVocab::from_text(text);
        let tokens: Vec<usize> = text.chars().map(|c| vocab.ids[&c]).collect();
        let n_val = (tokens.len() as f64 * val_fraction).round() as usize;
        let split = tokens.len() - n_val.min(tokens.len());
        CharText { path: None, vocab, tokens, split }
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &CharVocab {
        &self.vocab
    }

    /// All tokens, training then validation.
    pub fn tokens(&self) -> &[usize] {
        &self.tokens
    }

    /// The training tokens (the first part of the text).
    pub fn train(&self) -> &[usize] {
        &self.tokens[..self.split]
    }

    /// The validation tokens (the last `val_fraction` of the text).
    pub fn val(&self) -> &[usize] {
        &self.tokens[self.split..]
    }

    /// The longest `block_size` the training part and a non-empty validation part both support (a window
    /// holds `block_size + 1` tokens); 0 if none.
    pub fn max_block_size(&self) -> usize {
        let val = if self.val().is_empty() { usize::MAX } else { self.val().len() };
        self.train().len().min(val).saturating_sub(1)
    }

    /// Checks that both splits are long enough for windows of `block_size + 1` tokens.
    ///
    /// # Errors
    ///
    /// [`DataError::Invalid`] naming the file (or `<text>`) if a split is too short.
    pub fn check_block_size(&self, block_size: usize) -> Result<()> {
        if block_size == 0 || block_size > self.max_block_size() {
            let path = self.path.clone().unwrap_or_else(|| PathBuf::from("<text>"));
            let msg = format!(
                "block size {block_size} needs windows of {} characters; the training part has {} and the \
                 validation part {} (block size must be in 1..={})",
                block_size + 1,
                self.train().len(),
                self.val().len(),
                self.max_block_size()
            );
            return Err(DataError::invalid(&path, msg));
        }
        Ok(())
    }

    /// `batch_size` windows of `block_size + 1` tokens starting at uniformly random positions of the
    /// training part (with replacement), as an (input, target) batch.
    ///
    /// # Panics
    ///
    /// If `batch_size` or `block_size` is 0 or the training part is shorter than `block_size + 1` tokens
    /// (check texts from users with [`check_block_size`](Self::check_block_size)).
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use tensorgrad::data::CharText;
    /// let text = CharText::from_text("to be or not to be", 0.0);
    /// let batch = text.train_batch(&mut StdRng::seed_from_u64(0), 2, 4);
    /// assert_eq!(batch.inputs.len(), 2 * 4);
    /// assert_eq!(batch.inputs[1..4], batch.targets[0..3]);
    /// ```
    #[track_caller]
    pub fn train_batch<R: Rng + ?Sized>(&self, rng: &mut R, batch_size: usize, block_size: usize) -> TokenBatch {
        let train = self.train();
        if batch_size == 0 || block_size == 0 || train.len() < block_size + 1 {
            bad_window("train_batch", batch_size, block_size, train.len());
        }
        let mut inputs = Vec::with_capacity(batch_size * block_size);
        let mut targets = Vec::with_capacity(batch_size * block_size);
        for _ in 0..batch_size {
            let start = rng.random_range(0..=train.len() - block_size - 1);
            inputs.extend_from_slice(&train[start..start + block_size]);
            targets.extend_from_slice(&train[start + 1..start + block_size + 1]);
        }
        TokenBatch { inputs, targets, batch_size, block_size }
    }

    /// The validation part as consecutive windows: window `k` starts at token `k * block_size` and holds
    /// `block_size + 1` tokens; a final shorter remainder is skipped.
    ///
    /// # Panics
    ///
    /// If `block_size` is 0.
    #[track_caller]
    pub fn val_windows(&self, block_size: usize) -> ValWindows<'_> {
        if block_size == 0 {
            bad_window("val_windows", 1, block_size, self.val().len());
        }
        ValWindows { tokens: self.val(), block_size, start: 0 }
    }

    /// The validation windows of [`val_windows`](Self::val_windows) grouped in batches of up to
    /// `batch_size` rows (the last batch may be smaller).
    ///
    /// # Panics
    ///
    /// If `batch_size` or `block_size` is 0.
    #[track_caller]
    pub fn val_batches(&self, batch_size: usize, block_size: usize) -> impl Iterator<Item = TokenBatch> + '_ {
        if batch_size == 0 {
            bad_window("val_batches", batch_size, block_size, self.val().len());
        }
        let mut windows = self.val_windows(block_size);
        std::iter::from_fn(move || {
            let mut batch = TokenBatch {
                inputs: Vec::with_capacity(batch_size * block_size),
                targets: Vec::with_capacity(batch_size * block_size),
                batch_size: 0,
                block_size,
            };
            for (x, y) in windows.by_ref().take(batch_size) {
                batch.inputs.extend_from_slice(x);
                batch.targets.extend_from_slice(y);
                batch.batch_size += 1;
            }
            (batch.batch_size > 0).then_some(batch)
        })
    }
}

/// Iterator over (input, target) windows of the validation tokens; see [`CharText::val_windows`].
#[derive(Debug, Clone)]
pub struct ValWindows<'a> {
    tokens: &'a [usize],
    block_size: usize,
    start: usize,
}

impl<'a> Iterator for ValWindows<'a> {
    type Item = (&'a [usize], &'a [usize]);

    fn next(&mut self) -> Option<Self::Item> {
        let end = self.start + self.block_size;
        if end >= self.tokens.len() {
            return None;
        }
        let item = (&self.tokens[self.start..end], &self.tokens[self.start + 1..end + 1]);
        self.start = end;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.tokens.len().saturating_sub(self.start + 1) / self.block_size;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ValWindows<'_> {}

#[cold]
#[track_caller]
fn bad_fraction(val_fraction: f64) -> ! {
    panic!("CharText: val_fraction must be in [0, 1), got {val_fraction}")
}

#[cold]
#[track_caller]
fn bad_window(what: &str, batch_size: usize, block_size: usize, available: usize) -> ! {
    panic!(
        "CharText::{what}: batch size {batch_size} and block size {block_size} must be positive and a window \
         of block_size + 1 tokens must fit in the {available} tokens available"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_last_fraction() {
        let t = CharText::from_text("abcdefghij", 0.3);
        assert_eq!(t.vocab().decode(t.train()), "abcdefg");
        assert_eq!(t.vocab().decode(t.val()), "hij");
    }

    #[test]
    fn val_windows_cover_every_target_once() {
        let t = CharText::from_text("abcdefghij0123456789", 0.5);
        let w: Vec<_> = t.val_windows(3).map(|(x, y)| (t.vocab().decode(x), t.vocab().decode(y))).collect();
        assert_eq!(w, [("012".into(), "123".into()), ("345".into(), "456".into()), ("678".into(), "789".into())]);
        assert_eq!(t.val_windows(3).len(), 3);
        let b: Vec<_> = t.val_batches(2, 3).map(|b| b.batch_size).collect();
        assert_eq!(b, [2, 1]);
    }
}
