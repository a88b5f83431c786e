-- Claims deal a book's codes in id order from a cursor: every code of the book with an id below
-- `deal_cursor` has been handed out once, so the next free codes are found in O(batch) by primary
-- key, never by scanning past the claimed ones. Codes that come back (a lapsed claim) wait in
-- `returned_codes` and are dealt before the cursor moves on.
ALTER TABLE books ADD COLUMN deal_cursor INTEGER NOT NULL DEFAULT 0;

CREATE TABLE returned_codes (
    book_id TEXT NOT NULL REFERENCES books (id),
    code_id INTEGER NOT NULL REFERENCES codes (id),
    PRIMARY KEY (book_id, code_id)
);

DROP INDEX codes_pool;
CREATE INDEX codes_book ON codes (book_id, id);
