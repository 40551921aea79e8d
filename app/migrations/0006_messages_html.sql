-- Messages: an optional HTML body, sent with the text body as multipart/alternative mail.
ALTER TABLE messages ADD COLUMN html_body text;
ALTER TABLE message_templates ADD COLUMN html_body text;
